"""Read functions that moved into seatflow.storage: the manual-review queue,
the measurements of the load test and the demo, and the intake backlog, on
real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.states import SETTLED
from seatflow.storage import stats
from seatflow.storage.db import connection
from seatflow.storage.intake import pending_intake
from seatflow.storage.review import manual_review_queue
from seatflow.storage.transitions import transition
from tests.support import floorplan, import_plan, new_booking, slot

PATH_TO_REVIEW = ("capacity_verified", "assignment_pending", "assignment_in_progress",
                  "manual_review")


async def test_the_review_queue_lists_manual_review_bookings_of_one_restaurant(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid, other = f"rq-{unique_id}", f"rq-other-{unique_id}"
    for r in (rid, other):
        await import_plan(db_engine, floorplan(r, [{"id": "T1", "capacity": 2}]))
    late = await new_booking(db_engine, rid, 2, start=slot(days=4))
    early = await new_booking(db_engine, rid, 2, start=slot(days=3))
    waiting = await new_booking(db_engine, rid, 2)  # not in review: left out
    elsewhere = await new_booking(db_engine, other, 2)
    for booking in (late, early, elsewhere):
        async with connection(db_engine) as conn:
            for version, state in enumerate(PATH_TO_REVIEW):
                await transition(conn, booking, version, state, reason="no plan")

    queue = await manual_review_queue(db_engine, rid)
    assert [item.booking_id for item in queue] == [early, late]
    assert waiting not in {item.booking_id for item in queue}
    assert queue[0].restaurant_id == rid and queue[0].party_size == 2
    assert queue[0].since is not None and queue[0].attempts == 0
    assert queue[0].last_reason == "no plan"
    everywhere = {item.booking_id for item in await manual_review_queue(db_engine)}
    assert {early, late, elsewhere} <= everywhere


async def test_measurements_count_states_and_find_no_double_booking(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"ms-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start = slot(days=5)
    a = await new_booking(db_engine, rid, 2, start=start)
    b = await new_booking(db_engine, rid, 2, start=start + timedelta(days=1))
    async with connection(db_engine) as conn:
        await transition(conn, a, 0, "capacity_verified")

    states = await stats.states_of(db_engine, [a, b])
    assert states == {"capacity_verified": 1, "created": 1}
    assert not any(s in SETTLED for s in states)
    assert await stats.states_of(db_engine, []) == {}
    assert await stats.double_booked_table_minutes(db_engine, [rid]) == 0.0
    assert await stats.latency_percentiles(db_engine, [a, b]) == {
        "p50": None, "p95": None, "p99": None, "max": None}
    assert await stats.confirm_latencies(db_engine, [a, b]) == []
    assert await stats.existing_restaurants(db_engine, [rid, f"none-{unique_id}"]) == {rid}
    assert await stats.latest_booking_start(db_engine, [rid]) == start + timedelta(days=1)
    assert await stats.bookings_starting_between(
        db_engine, rid, start - timedelta(hours=1), start + timedelta(hours=1)) == 1
    figures = await stats.email_outbox_figures(db_engine, [a, b])
    assert figures.confirmed_ids == frozenset() and figures.extra_sends == 0
    counts = await stats.count_in_states(db_engine, ["capacity_verified"])
    assert counts["capacity_verified"] >= 1


async def test_slot_figures_give_the_wait_for_a_slot_and_how_long_it_was_held(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"slots-{unique_id}"
    base = slot(days=2)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    async with db_engine.begin() as conn:
        for n, booking_id in enumerate(ids):  # waits 0..40 ms, held 10..50 ms
            acquired = base + timedelta(seconds=n)
            await conn.execute(text(
                "INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
                "released_at, wait_ms) VALUES (:r, CAST(:b AS uuid), 0, :a, :rel, :w)"),
                {"r": rid, "b": booking_id, "a": acquired,
                 "rel": acquired + timedelta(milliseconds=10 * (n + 1)), "w": 10.0 * n})
        # still held: counted in the wait, not in the hold
        held = str(uuid.uuid4())
        await conn.execute(text(
            "INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, wait_ms) "
            "VALUES (:r, CAST(:b AS uuid), 1, :a, 1000)"), {"r": rid, "b": held, "a": base})

    figures = await stats.slot_figures(db_engine, ids)
    assert figures == {"wait_ms": {"p50": 20.0, "p95": 38.0},
                       "hold_ms": {"p50": 30.0, "p95": 48.0}}
    assert (await stats.slot_figures(db_engine, [*ids, held]))["hold_ms"]["p95"] == 48.0
    assert (await stats.slot_figures(db_engine, []))["wait_ms"] == {"p50": None, "p95": None}


async def test_the_intake_backlog_lists_bookings_whose_workflow_never_started(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"ib-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    pending = await pending_intake(db_engine, restaurant_ids=[rid])
    assert [(p.booking_id, p.restaurant_id, p.party_size) for p in pending] == [(booking, rid, 2)]
    assert await pending_intake(db_engine, restaurant_ids=[rid], min_age_seconds=3600) == []
