"""Operator actions against real PostgreSQL, a real Temporal dev server and the
real worker: a decision that lost the race, a cancel after the workflow
closed, and resuming a booking whose workflow failed or was terminated.
The CLI runs as a real process (`seatflow ...`, forked by tests/cli_support.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.domain.messages import BookingWorkflowInput
from seatflow.service.bookings import (
    BookingActionRefused,
    cancel_booking_request,
    resume_booking,
    start_booking_workflow,
)
from seatflow.service.review import resolve_manual_review
from tests.cli_support import seatflow_cli
from tests.support import (
    booking_tables,
    fetch,
    floorplan,
    import_plan,
    new_booking,
    scalar,
    slot,
    wait_for_state,
)
from worker import build_worker

TWO_TWO_TOPS = [{"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 2}]


@pytest.fixture
def queue() -> str:
    return f"actions-{uuid.uuid4().hex[:8]}"


async def cli(dev_env: Any, pg_url: str, queue: str, *args: str, tmp: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_")}
    env.update(DATABASE_URL=pg_url, TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
               TEMPORAL_NAMESPACE=dev_env.client.namespace, SEATFLOW_TASK_QUEUE=queue)
    done = await seatflow_cli().arun(args, env, cwd=tmp)
    return done.returncode, done.stdout + done.stderr


async def to_manual_review(dev_env: Any, db_engine: Any, rid: str, queue: str) -> tuple[str, Any]:
    booking = await new_booking(db_engine, rid, 4)
    handle = await start_booking_workflow(dev_env.client, booking_id=booking, restaurant_id=rid,
                                          party_size=4, start=slot(), task_queue=queue)
    assert await wait_for_state(db_engine, booking, "manual_review") == "manual_review"
    return booking, handle


async def test_the_actor_of_a_decision_is_the_caller_never_a_field_of_it() -> None:
    """Refused before anything is read or sent (no database, no Temporal needed)."""
    booking = str(uuid.uuid4())
    for decision, actor, message in [
        ({"action": "retry", "actor": "someone-else"}, "maria", "actor is not part of a decision"),
        ({"action": "retry"}, "  ", "actor is required"),
        ({"action": "reject"}, "maria", "reject needs a reason"),
    ]:
        with pytest.raises(BookingActionRefused, match=message) as refused:
            await resolve_manual_review(None, None, booking, decision,  # type: ignore[arg-type]
                                        actor=actor)
        assert refused.value.code == "invalid_decision"


async def test_review_after_another_decision_won_reports_the_outcome(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, pg_url: str,
    unique_id: str, queue: str, tmp_path: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        # The UI's signal rejects it first; the workflow closes.
        await handle.signal("resolve_manual_review",
                            {"action": "reject", "actor": "ops", "reason": "kitchen closed"})
        await handle.result()
        with pytest.raises(BookingActionRefused) as api:
            await resolve_manual_review(db_engine, dev_env.client, booking,
                                        {"action": "retry"}, actor="maria")
        code, out = await cli(dev_env, pg_url, queue, "review", "assign", booking,
                              "--tables", "T1,T2", "--actor", "maria", tmp=tmp_path)
    expected = f"booking {booking} was already resolved: failed (rejected by ops: kitchen closed)"
    assert str(api.value) == expected
    assert code == 1, out
    assert expected in out
    assert "Traceback" not in out and "RPCError" not in out
    assert await booking_tables(db_engine, booking) == []


async def test_review_refusal_names_the_reason(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, pg_url: str,
    unique_id: str, queue: str, tmp_path: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, _handle = await to_manual_review(dev_env, db_engine, rid, queue)
        code, out = await cli(dev_env, pg_url, queue, "review", "assign", booking,
                              "--tables", "T9", "--actor", "maria", tmp=tmp_path)
    assert code == 1 and "unknown table(s)" in out and "T9" in out, out
    assert "Traceback" not in out


async def test_cancel_after_the_workflow_closed_cancels_in_the_database(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, pg_url: str,
    unique_id: str, queue: str, tmp_path: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    booking = await new_booking(db_engine, rid, 2)
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        handle = await start_booking_workflow(dev_env.client, booking_id=booking,
                                              restaurant_id=rid, party_size=2, start=slot(),
                                              task_queue=queue)
        assert (await handle.result()).state == "confirmed"
        code, out = await cli(dev_env, pg_url, queue, "bookings", "cancel", booking,
                              "--actor", "guest", "--reason", "plans changed", tmp=tmp_path)
        again, out_again = await cli(dev_env, pg_url, queue, "bookings", "cancel", booking,
                                     tmp=tmp_path)
    assert code == 0, out
    assert await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                        "CAST(:b AS uuid)", b=booking) == "cancelled"
    assert await booking_tables(db_engine, booking) == []
    assert again == 1 and f"booking {booking} was already resolved: cancelled" in out_again
    assert "Traceback" not in out + out_again


async def test_cancel_with_a_bad_actor_is_refused_and_changes_nothing(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    booking = await new_booking(db_engine, rid, 2)
    with pytest.raises(BookingActionRefused, match="actor must be a non-empty string"):
        await cancel_booking_request(db_engine, dev_env.client, booking, actor="  ",
                                     reason=None)
    assert await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                        "CAST(:b AS uuid)", b=booking) == "created"


async def test_resume_starts_a_new_run_after_the_workflow_was_terminated(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, pg_url: str,
    unique_id: str, queue: str, tmp_path: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    booking = await new_booking(db_engine, rid, 2)
    client = dev_env.client
    # Started on a queue no worker polls, then terminated (an operator, a bad
    # deploy): the booking is left in `created` with a closed workflow.
    first = await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                         party_size=2, start=slot(), task_queue=f"{queue}-dead")
    await first.terminate("deploy gone wrong")
    # A start with the normal policy joins nothing and starts nothing.
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            "BookingAssignmentWorkflow", BookingWorkflowInput(booking_id=booking), id=first.id,
            task_queue=queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        code, out = await cli(dev_env, pg_url, queue, "bookings", "resume", booking, tmp=tmp_path)
        assert code == 0, out
        assert "previous run: terminated" in out
        assert await wait_for_state(db_engine, booking, "confirmed") == "confirmed"
        refused, out_refused = await cli(dev_env, pg_url, queue, "bookings", "resume", booking,
                                         tmp=tmp_path)
    assert await booking_tables(db_engine, booking) == ["T1"]
    runs = await fetch(db_engine, "SELECT count(*) FROM booking_assignment_state_history WHERE "
                       "booking_id = CAST(:b AS uuid) AND to_state = 'confirmed'", b=booking)
    assert runs[0][0] == 1
    assert refused == 1 and f"booking {booking} is already confirmed; nothing to resume" \
        in out_refused


async def test_resume_refuses_while_the_workflow_runs(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
    queue: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        with pytest.raises(BookingActionRefused, match="its workflow is running"):
            await resume_booking(db_engine, dev_env.client, booking, task_queue=queue)
        await handle.terminate("test: the worker crashed for good")
        resumed = await resume_booking(db_engine, dev_env.client, booking, task_queue=queue)
        assert resumed.previous_status == "TERMINATED"
        # The new run picks the booking up in manual review, where it was.
        result = await resolve_manual_review(db_engine, dev_env.client, booking,
                                             {"action": "reject", "reason": "no table"},
                                             actor="ops")
    assert result["state"] == "failed"


async def test_the_email_step_never_confirms_a_booking_that_is_no_longer_confirmed(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    from seatflow.mail import FileMailbox, send_outbox_email
    from seatflow.storage.db import connection
    from seatflow.storage.lifecycle import cancel_booking
    from seatflow.storage.transitions import current_state, transition
    from tests.temporal.test_repack import seat_at

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    mailbox = FileMailbox(tmp_path / "mail")
    # Cancelled by the CLI's database fallback: the pending email is withdrawn.
    first = await new_booking(db_engine, rid, 2)
    await seat_at(db_engine, first, ("T1",))
    await cancel_booking(db_engine, first, actor="guest", reason="ill")
    # Cancelled by any other path between the confirm and the send.
    second = await new_booking(db_engine, rid, 2)
    await seat_at(db_engine, second, ("T2",))
    async with connection(db_engine) as conn:
        _state, version = await current_state(conn, second)
        await transition(conn, second, version, "cancelled", reason="test")
    results = [await send_outbox_email(db_engine, mailbox, b, "confirmation", "s@example.com")
               for b in (first, second)]
    assert [r.sent for r in results] == [False, False]
    assert not list((tmp_path / "mail").glob("*.eml"))
    statuses = await fetch(db_engine, "SELECT status FROM email_outbox WHERE booking_id IN "
                           "(CAST(:a AS uuid), CAST(:b AS uuid)) AND kind = 'confirmation'",
                           a=first, b=second)
    assert [s[0] for s in statuses] == ["withdrawn", "withdrawn"]  # never sent, and says so
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE booking_id = "
                        "CAST(:b AS uuid) AND event_type = 'email.withdrawn'", b=first) == 1
