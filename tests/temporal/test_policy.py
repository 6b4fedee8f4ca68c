"""The assignment policy (docs/architecture.md): attempts and backoff,
manual review by update and signal, cancellation, invalid bookings, restaurant slots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.service.bookings import start_booking_workflow
from tests.support import (
    SETTLED,
    booking_tables,
    double_booked_minutes,
    fetch,
    floorplan,
    import_plan,
    insert_raw_booking,
    new_booking,
    save_history,
    scalar,
    slot,
    wait_for_state,
)
from worker import build_worker

# Two unjoinable 2-tops: a party of 4 fits the restaurant's capacity but no plan.
TWO_TWO_TOPS = [{"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 2}]


async def start(client: Client, booking: str, rid: str, queue: str) -> WorkflowHandle[Any, Any]:
    return await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                        party_size=0, start=slot(), task_queue=queue)


async def to_manual_review(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, rid: str,
                           queue: str) -> tuple[str, WorkflowHandle[Any, Any]]:
    booking = await new_booking(db_engine, rid, 4)
    handle = await start(dev_env.client, booking, rid, queue)
    assert await wait_for_state(db_engine, booking, "manual_review") == "manual_review"
    return booking, handle


async def test_unseatable_booking_takes_five_growing_attempts_then_manual_review(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        history = await handle.fetch_history()
    attempts = await fetch(db_engine, "SELECT attempt_no, result, reason FROM "
                           "booking_assignment_attempts WHERE booking_id = CAST(:id AS uuid) "
                           "ORDER BY attempt_no", id=booking)
    assert [a[0] for a in attempts] == [1, 2, 3, 4, 5]
    assert all(a[1] == "no_plan" and "party of 4" in a[2] for a in attempts)
    timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
              for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    # The manual-review wait (until the booking's start) is a timer of hours; the
    # backoffs are the short ones.
    backoffs = [t for t in timers if t < timedelta(hours=1)]
    assert len(backoffs) == 4  # a backoff after each failed attempt but the last
    assert backoffs == sorted(backoffs) and backoffs[0] < backoffs[-1]
    assert await booking_tables(db_engine, booking) == []


async def test_operator_assign_confirms_and_sends_one_email(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, mailbox: Path) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        # T1 and T2 do not touch: checked like any plan, refused unless forced.
        with pytest.raises(WorkflowUpdateFailedError) as not_adjacent:
            await handle.execute_update(
                "resolve_manual_review_update",
                {"action": "assign", "table_ids": ["T1", "T2"], "actor": "maria"})
        assert "not adjacent" in str(not_adjacent.value.cause)
        assert "--force" in str(not_adjacent.value.cause)
        result = await handle.execute_update(
            "resolve_manual_review_update",
            {"action": "assign", "table_ids": ["T1", "T2"], "actor": "maria", "note": "push",
             "force": True},
        )
        assert result["state"] == "confirmed"
        await handle.result()
        await save_history(handle, "manual_review_then_assign")
    assert await booking_tables(db_engine, booking) == ["T1", "T2"]
    history = await fetch(db_engine, "SELECT to_state, actor FROM booking_assignment_state_history"
                          " WHERE booking_id = CAST(:id AS uuid) ORDER BY id", id=booking)
    assert history[-2:] == [("assigned", "maria"), ("confirmed", "maria")]
    forced = await fetch(db_engine, "SELECT metadata->>'force', metadata->>'overridden', reason "
                         "FROM booking_assignment_state_history WHERE booking_id = "
                         "CAST(:id AS uuid) AND to_state = 'assigned'", id=booking)
    assert forced[0][0] == "true" and "not adjacent" in forced[0][1]
    assert "forced over" in forced[0][2] and "maria" in forced[0][2]
    assert len(list(mailbox.glob(f"{booking}*.eml"))) == 1


async def test_assign_of_taken_or_unknown_tables_is_rejected_and_changes_nothing(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS + [{"id": "T3", "capacity": 4}]))
    start_at = slot()
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        holder = await new_booking(db_engine, rid, 4, start=start_at)
        await start(dev_env.client, holder, rid, queue)
        assert await wait_for_state(db_engine, holder, "confirmed") == "confirmed"
        booking = await new_booking(db_engine, rid, 4, start=start_at)
        handle = await start(dev_env.client, booking, rid, queue)
        assert await wait_for_state(db_engine, booking, "manual_review") == "manual_review"
        version = await scalar(db_engine, "SELECT assignment_state_version FROM bookings "
                               "WHERE id = CAST(:id AS uuid)", id=booking)
        with pytest.raises(WorkflowUpdateFailedError) as taken:
            await handle.execute_update(
                "resolve_manual_review_update",
                {"action": "assign", "table_ids": ["T3"], "actor": "maria"})
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update(
                "resolve_manual_review_update",
                {"action": "assign", "table_ids": ["T99"], "actor": "maria"})
        with pytest.raises(WorkflowUpdateFailedError) as malformed:
            await handle.execute_update("resolve_manual_review_update", {"action": "seat"})
        status = await handle.query("status")
    assert "taken" in str(taken.value.cause)
    assert "T99" in str(unknown.value.cause)
    assert "action must be one of" in str(malformed.value.cause)
    assert status["state"] == "manual_review"
    assert await scalar(db_engine, "SELECT assignment_state_version FROM bookings "
                        "WHERE id = CAST(:id AS uuid)", id=booking) == version
    assert await booking_tables(db_engine, booking) == []


async def test_retry_after_tables_free_up_confirms(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start_at = slot()
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        holder = await new_booking(db_engine, rid, 2, start=start_at)
        holder_handle = await start(dev_env.client, holder, rid, queue)
        assert await wait_for_state(db_engine, holder, "confirmed") == "confirmed"
        await holder_handle.result()
        booking = await new_booking(db_engine, rid, 2, start=start_at)
        handle = await start(dev_env.client, booking, rid, queue)
        assert await wait_for_state(db_engine, booking, "manual_review") == "manual_review"
        # The holder cancels (its workflow is closed: cancel in the database).
        from seatflow.storage.lifecycle import cancel_booking
        await cancel_booking(db_engine, holder, actor="guest", reason="plans changed")
        result = await handle.execute_update(
            "resolve_manual_review_update", {"action": "retry", "actor": "ops"})
        assert result["state"] == "assignment_pending"
        outcome = await handle.result()
        await save_history(handle, "manual_review_then_retry")
    assert outcome.state == "confirmed"
    assert await booking_tables(db_engine, booking) == ["T1"]
    assert await booking_tables(db_engine, holder) == []


async def test_reject_fails_the_booking_with_the_operators_reason(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        await handle.execute_update("resolve_manual_review_update",
                                    {"action": "reject", "actor": "ops", "reason": "kitchen closed"})
        outcome = await handle.result()
        await save_history(handle, "manual_review_then_reject")
    assert outcome.state == "failed"
    reason = await scalar(db_engine, "SELECT last_reason FROM bookings WHERE id = "
                          "CAST(:id AS uuid)", id=booking)
    assert reason == "rejected by ops: kitchen closed"


async def test_malformed_signal_is_ignored_and_a_good_one_still_works(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        _booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        for bad in ("not json object", {"action": "assign"}, {"action": 3, "actor": "x"},
                    {"action": "retry", "actor": "ops", "extra": 1}):
            await handle.signal("resolve_manual_review", bad)
        await asyncio.sleep(0.5)
        assert (await handle.query("status"))["state"] == "manual_review"
        # T1 and T2 do not touch: the operator forces the adjacency rule.
        await handle.signal("resolve_manual_review",
                            {"action": "assign", "table_ids": ["T1", "T2"], "actor": "ops",
                             "force": True})
        outcome = await handle.result()
        await save_history(handle, "bad_signals_then_signal_assign")
    assert outcome.state == "confirmed"


async def test_cancel_releases_tables_from_any_state(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        booking, handle = await to_manual_review(dev_env, db_engine, rid, queue)
        await handle.signal("cancel_booking", {"actor": "guest", "reason": "ill"})
        outcome = await handle.result()
        await save_history(handle, "cancel_in_manual_review")
    assert outcome.state == "cancelled"
    assert await scalar(db_engine, "SELECT status FROM bookings WHERE id = CAST(:id AS uuid)",
                        id=booking) == "cancelled"


@pytest.mark.parametrize(
    ("party", "start_delta", "hour", "expected"),
    [
        (0, timedelta(days=2), 19, "party size must be at least 1"),
        (500, timedelta(days=2), 19, "exceeds"),
        (2, timedelta(days=-1), 19, "in the past"),
        (2, timedelta(days=2), 4, "outside every service"),
    ],
    ids=["party-zero", "party-above-capacity", "start-in-past", "outside-service"],
)
async def test_invalid_bookings_fail_at_once_without_attempts(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, party: int, start_delta: timedelta, hour: int, expected: str) -> None:
    rid = f"r-{unique_id}"
    plan = floorplan(rid, TWO_TWO_TOPS)
    plan["restaurant"]["services"][0].update(start="11:00", end="23:00")
    await import_plan(db_engine, plan)
    start_at = (datetime.now(UTC) + start_delta).replace(hour=hour, minute=0)
    booking = await insert_raw_booking(
        db_engine, restaurant_id=rid, party_size=party, start=start_at,
        end=start_at + timedelta(hours=2), occupied_until=start_at + timedelta(hours=2),
    )
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        handle = await start(dev_env.client, booking, rid, queue)
        outcome = await handle.result()
        if party == 0:
            await save_history(handle, "invalid_booking")
    assert outcome.state == "failed"
    assert expected in (outcome.reason or "")
    assert await scalar(db_engine, "SELECT count(*) FROM booking_assignment_attempts "
                        "WHERE booking_id = CAST(:id AS uuid)", id=booking) == 0


async def test_manual_review_deadline_expires_the_booking(time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TWO_TWO_TOPS))
    booking = await new_booking(db_engine, rid, 4)
    async with build_worker(time_skipping_env.client, db_engine, test_settings, task_queue=queue):
        # Waiting on the result lets the test server skip to the deadline (the start).
        handle = await start(time_skipping_env.client, booking, rid, queue)
        outcome = await handle.result()
        await save_history(handle, "manual_review_expired")
    assert outcome.state == "failed"
    assert outcome.reason == "manual_review_expired"


async def test_thirty_bookings_never_hold_more_than_max_parallel_permits(dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str, queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", "3")
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": f"T{i}", "capacity": 4} for i in range(30)]))
    bookings = [await new_booking(db_engine, rid, 2 + i % 3) for i in range(30)]
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        for b in bookings:
            await start(dev_env.client, b, rid, queue)
        states = [await wait_for_state(db_engine, b, SETTLED) for b in bookings]
    assert states == ["confirmed"] * 30
    peak = await scalar(
        db_engine,
        "SELECT max(c) FROM (SELECT (SELECT count(*) FROM permit_intervals q WHERE "
        "q.restaurant_id = p.restaurant_id AND q.acquired_at <= p.acquired_at AND "
        "(q.released_at IS NULL OR q.released_at > p.acquired_at)) AS c "
        "FROM permit_intervals p WHERE p.restaurant_id = :r) x", r=rid,
    )
    intervals = await scalar(db_engine, "SELECT count(*) FROM permit_intervals WHERE "
                             "restaurant_id = :r", r=rid)
    assert intervals >= 30
    assert 1 <= peak <= 3
    assert await double_booked_minutes(db_engine, rid) == 0
