"""BookingAssignmentWorkflow on the time-skipping test server with real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.domain.messages import BookingOutcome
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.service.bookings import start_booking_workflow
from tests.support import (
    booking_tables,
    double_booked_minutes,
    fetch,
    floorplan,
    import_plan,
    new_booking,
    save_history,
    scalar,
    slot,
)
from worker import build_worker


async def run_booking(client: Client, engine: AsyncEngine, restaurant_id: str, booking_id: str,
                      queue: str) -> BookingOutcome:
    handle = await start_booking_workflow(
        client, booking_id=booking_id, restaurant_id=restaurant_id, party_size=0,
        start=slot(), task_queue=queue,
    )
    outcome = await handle.result()
    assert isinstance(outcome, BookingOutcome)
    return outcome


async def wait_for_state(engine: AsyncEngine, booking_id: str, wanted: str,
                         timeout: float = 30.0) -> str:
    state = ""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await scalar(engine, "SELECT assignment_state FROM bookings WHERE id = "
                             "CAST(:id AS uuid)", id=booking_id)
        if state == wanted:
            return str(state)
        await asyncio.sleep(0.05)
    return str(state)


async def test_party_of_two_gets_a_two_top(time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, mailbox: Path) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 4}, {"id": "T3", "capacity": 6},
    ]))
    booking = await new_booking(db_engine, rid, 2)
    client = time_skipping_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        outcome = await run_booking(client, db_engine, rid, booking, queue)
        handle = client.get_workflow_handle(booking_workflow_id(booking))
        events = [e.event_type for e in (await handle.fetch_history()).events]
        # patch "email-local-activity" (the v1 path is tests/histories/happy_path.json)
        await save_history(handle, "happy_path_email_local")
    assert outcome.state == "confirmed"
    assert await booking_tables(db_engine, booking) == ["T1"]
    # The file mailbox is local: verify, attempt and the confirmation email in
    # ONE workflow task, with no activity task (issue 27).
    assert events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{booking}-confirmation.eml"]
    history = await fetch(
        db_engine,
        "SELECT from_state, to_state, version FROM booking_assignment_state_history "
        "WHERE booking_id = CAST(:id AS uuid) ORDER BY id", id=booking,
    )
    assert [h[1] for h in history] == [
        "created", "capacity_verified", "assignment_pending", "assignment_in_progress",
        "assigned", "confirmed",
    ]
    assert [h[2] for h in history] == [0, 1, 2, 3, 4, 5]
    # One outbox row per transition, one state-machine event per transition.
    assert await scalar(db_engine, "SELECT count(*) FROM state_event_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=booking) == 5
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE booking_id = "
                        "CAST(:id AS uuid) AND event_type = 'booking.confirmed'", id=booking) == 1
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=booking) == 1
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{booking}-confirmation.eml"]


async def test_party_of_seven_takes_two_adjacent_movable_four_tops(time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "A1", "capacity": 4}, {"id": "A2", "capacity": 4},
        {"id": "B1", "capacity": 4}, {"id": "F1", "capacity": 4, "mobility": "fixed"},
        {"id": "F2", "capacity": 4, "mobility": "fixed"},
    ], adjacency=[["A1", "A2"], ["F1", "F2"]]))
    booking = await new_booking(db_engine, rid, 7)
    client = time_skipping_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        outcome = await run_booking(client, db_engine, rid, booking, queue)
    assert outcome.state == "confirmed"
    assert await booking_tables(db_engine, booking) == ["A1", "A2"]


async def test_taken_tables_fail_the_attempt_and_retry_after_backoff(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start = slot()
    first = await new_booking(db_engine, rid, 2, start=start)
    second = await new_booking(db_engine, rid, 2, start=start)
    # The dev server runs in real time: the booking must wait in manual review,
    # which the time-skipping server would fast-forward to its deadline.
    client = dev_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        assert (await run_booking(client, db_engine, rid, first, queue)).state == "confirmed"
        handle = await start_booking_workflow(
            client, booking_id=second, restaurant_id=rid, party_size=2, start=start,
            task_queue=queue)
        state = await wait_for_state(db_engine, second, "manual_review")
        status = await handle.query("status")
    assert state == "manual_review", (await fetch(
        db_engine, "SELECT to_state, reason FROM booking_assignment_state_history "
        "WHERE booking_id = CAST(:id AS uuid) ORDER BY id", id=second))[-3:]
    assert status["attempts"] == 5 and status["state"] == "manual_review"
    attempts = await fetch(
        db_engine,
        "SELECT attempt_no, result, reason FROM booking_assignment_attempts "
        "WHERE booking_id = CAST(:id AS uuid) ORDER BY attempt_no", id=second,
    )
    assert [a[0] for a in attempts] == [1, 2, 3, 4, 5]
    assert all(a[1] == "no_plan" for a in attempts)
    assert "taken" in attempts[0][2]
    assert await booking_tables(db_engine, second) == []


async def test_starting_the_workflow_twice_runs_it_once(time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, mailbox: Path) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    client = time_skipping_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        h1 = await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                          party_size=2, start=slot(), task_queue=queue)
        h2 = await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                          party_size=2, start=slot(), task_queue=queue)
        assert h1.id == h2.id == booking_workflow_id(booking)
        r1, r2 = await h1.result(), await h2.result()
        # After completion a third start joins the closed run instead of starting anew.
        h3 = await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                          party_size=2, start=slot(), task_queue=queue)
        assert (await h3.result()).version == r1.version
    assert r1 == r2
    assert await scalar(db_engine, "SELECT count(*) FROM booking_assignment_state_history "
                        "WHERE booking_id = CAST(:id AS uuid) AND to_state = 'confirmed'",
                        id=booking) == 1
    assert len(list(mailbox.glob("*.eml"))) == 1


async def test_many_concurrent_bookings_never_double_book(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, mailbox: Path) -> None:
    rid = f"r-{unique_id}"
    tables = [{"id": f"T{i}", "capacity": 2 if i <= 5 else 4} for i in range(1, 11)]
    await import_plan(db_engine, floorplan(rid, tables, adjacency=[["T6", "T7"], ["T8", "T9"]]))
    start = slot()
    bookings = [await new_booking(db_engine, rid, 2 + (i % 3), start=start) for i in range(50)]
    client = dev_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        for b in bookings:
            await start_booking_workflow(client, booking_id=b, restaurant_id=rid, party_size=2,
                                         start=start, task_queue=queue)
        states = [await wait_for_settled(db_engine, b) for b in bookings]
    assert set(states) <= {"confirmed", "manual_review"}
    assert states.count("confirmed") >= 8  # ten tables, one sitting: at least 8 seated
    assert await double_booked_minutes(db_engine, rid) == 0
    emails = await scalar(db_engine, "SELECT count(*) FROM email_outbox e JOIN bookings b "
                          "ON b.id = e.booking_id WHERE b.restaurant_id = :r", r=rid)
    assert emails == states.count("confirmed")
    await asyncio.sleep(0.5)  # the last confirmation emails are sent after the state change
    assert len(list(mailbox.glob("*.eml"))) == states.count("confirmed")


async def wait_for_settled(engine: AsyncEngine, booking_id: str, timeout: float = 60.0) -> str:
    state = ""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await scalar(engine, "SELECT assignment_state FROM bookings WHERE id = "
                             "CAST(:id AS uuid)", id=booking_id)
        if state in ("confirmed", "manual_review", "failed", "cancelled"):
            return str(state)
        await asyncio.sleep(0.1)
    return str(state)


async def test_a_booking_confirmed_before_its_workflow_ran_still_gets_its_one_email(time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, mailbox: Path) -> None:
    """A workflow task retried after its local activities committed the confirm
    (a worker overloaded or killed) finds the booking confirmed: it must still
    deliver the pending email from the outbox, once."""
    from tests.temporal.test_repack import seat_at

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    await seat_at(db_engine, booking, ("T1",))
    assert not list(mailbox.glob("*.eml"))
    client = time_skipping_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        first = await run_booking(client, db_engine, rid, booking, queue)
    assert first.state == "confirmed" and first.reason == "terminal_state"
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{booking}-confirmation.eml"]
    assert await scalar(db_engine, "SELECT status FROM email_outbox WHERE booking_id = "
                        "CAST(:id AS uuid)", id=booking) == "sent"
