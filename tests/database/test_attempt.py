"""The one-hop attempt (`seatflow.storage.attempts`) and its restaurant slots
(`seatflow.storage.slots`) against real PostgreSQL: one transaction per
attempt, the policy chosen by the caller, nothing written when busy or in
conflict, idempotent when retried after its commit, and a slot that never
outlives its attempt (not even a dead connection's)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.config import load_settings
from seatflow.domain.planning import BookingRequest, RestaurantSnapshot
from seatflow.domain.states import AssignmentState
from seatflow.engine import search
from seatflow.storage import slots
from seatflow.storage.attempts import AttemptSpec, SearchOutcome, run_attempt
from seatflow.storage.db import connection, driver, statement
from seatflow.storage.lifecycle import verify_booking
from seatflow.storage.restaurants import load_snapshot
from tests.support import booking_tables, fetch, floorplan, import_plan, new_booking, scalar

S = AssignmentState
CONFIG = load_settings().engine_config()


def planner(snapshot: RestaurantSnapshot, request: BookingRequest) -> SearchOutcome:
    found = search(snapshot, request, CONFIG)
    return SearchOutcome(found.plans, found.moves, found.reason)


async def pending_booking(engine: AsyncEngine, rid: str, party: int) -> tuple[str, int]:
    booking_id = await new_booking(engine, rid, party)
    ctx = await verify_booking(engine, booking_id, now=datetime.now(UTC))
    assert ctx.state == S.ASSIGNMENT_PENDING
    return booking_id, ctx.version


def spec(booking_id: str, rid: str, version: int, **kw: Any) -> AttemptSpec:
    args: dict[str, Any] = {"attempt_no": 1, "on_failure": S.ASSIGNMENT_PENDING,
                            "max_parallel": 2, "slot_wait_seconds": 0.3}
    args.update(kw)
    return AttemptSpec(booking_id=booking_id, restaurant_id=rid, expected_version=version,
                       **args)


async def advisory_locks(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))


async def test_a_confirmed_attempt_walks_every_state_in_one_transaction(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    booking_id, version = await pending_booking(db_engine, rid, 3)
    rec = await run_attempt(db_engine, spec(booking_id, rid, version), planner)
    assert (rec.outcome, rec.state, rec.tables) == ("confirmed", "confirmed", ("T1",))
    assert rec.version == version + 3
    history = [r[0] for r in await fetch(
        db_engine, "SELECT to_state FROM booking_assignment_state_history WHERE booking_id = "
        "CAST(:b AS uuid) ORDER BY version", b=booking_id)]
    assert history[-3:] == ["assignment_in_progress", "assigned", "confirmed"]
    assert await booking_tables(db_engine, booking_id) == ["T1"]
    # The attempt row, the booking.confirmed event, the email and the slot's interval.
    assert await scalar(db_engine, "SELECT result FROM booking_assignment_attempts WHERE "
                        "booking_id = CAST(:b AS uuid)", b=booking_id) == "confirmed"
    assert await scalar(db_engine, "SELECT count(*) FROM observability_events WHERE booking_id = "
                        "CAST(:b AS uuid) AND event_type = 'booking.confirmed'", b=booking_id) == 1
    assert await scalar(db_engine, "SELECT count(*) FROM email_outbox WHERE booking_id = "
                        "CAST(:b AS uuid)", b=booking_id) == 1
    interval = (await fetch(db_engine, "SELECT released_at >= acquired_at, wait_ms >= 0 "
                            "FROM permit_intervals WHERE booking_id = CAST(:b AS uuid)",
                            b=booking_id))
    assert interval == [(True, True)]
    assert await scalar(db_engine, "SELECT confirmed_at IS NOT NULL FROM bookings WHERE "
                        "id = CAST(:b AS uuid)", b=booking_id) is True


async def test_a_failed_attempt_moves_to_the_state_the_workflow_chose(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    # Two unjoinable 2-tops: a party of 4 has no plan.
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2},
                                                 {"id": "T2", "capacity": 2}]))
    booking_id, version = await pending_booking(db_engine, rid, 4)
    first = await run_attempt(db_engine, spec(booking_id, rid, version), planner)
    assert (first.outcome, first.state) == ("failed", "assignment_pending")
    assert first.reason
    last = await run_attempt(
        db_engine, spec(booking_id, rid, first.version, attempt_no=2,
                        on_failure=S.MANUAL_REVIEW), planner)
    assert (last.outcome, last.state) == ("failed", "manual_review")
    results = [r[0] for r in await fetch(
        db_engine, "SELECT result FROM booking_assignment_attempts WHERE booking_id = "
        "CAST(:b AS uuid) ORDER BY attempt_no", b=booking_id)]
    assert results == ["no_plan", "no_plan"]
    assert await booking_tables(db_engine, booking_id) == []


async def test_a_retry_after_commit_reports_what_the_attempt_did(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    booking_id, version = await pending_booking(db_engine, rid, 2)
    first = await run_attempt(db_engine, spec(booking_id, rid, version), planner)
    again = await run_attempt(db_engine, spec(booking_id, rid, version), planner)
    assert (again.outcome, again.state, again.version, again.tables) == (
        first.outcome, first.state, first.version, first.tables)
    assert await scalar(db_engine, "SELECT count(*) FROM booking_assignment_attempts WHERE "
                        "booking_id = CAST(:b AS uuid)", b=booking_id) == 1


async def test_a_stale_version_is_a_conflict_and_writes_nothing(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    booking_id, version = await pending_booking(db_engine, rid, 2)
    rec = await run_attempt(db_engine, spec(booking_id, rid, version - 1), planner)
    assert rec.outcome == "conflict"
    assert (rec.state, rec.version) == ("assignment_pending", version)
    assert await booking_tables(db_engine, booking_id) == []


async def test_busy_when_other_processes_hold_every_slot_and_nothing_is_written(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    booking_id, version = await pending_booking(db_engine, rid, 2)
    # Another "process" (here: another connection outside this process's
    # semaphore) holds both slots of the restaurant inside its transaction.
    async with db_engine.connect() as other:
        await other.begin()
        held = [await slots.TRY_SLOT.value(await driver(other), n=1, r=rid)]
        held.append((await other.execute(text(
            "SELECT s FROM generate_series(2, 2) s WHERE "
            "pg_try_advisory_xact_lock(hashtext('seatflow.slot:' || CAST(:r AS text)), s)"),
            {"r": rid})).scalar())
        assert held == [1, 2]
        rec = await run_attempt(db_engine, spec(booking_id, rid, version,
                                                slot_wait_seconds=0.2), planner)
        assert rec.outcome == "busy"
        assert rec.wait_ms >= 150
        await other.rollback()
    assert await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                        "CAST(:b AS uuid)", b=booking_id) == "assignment_pending"
    assert await scalar(db_engine, "SELECT count(*) FROM booking_assignment_attempts WHERE "
                        "booking_id = CAST(:b AS uuid)", b=booking_id) == 0
    # Released at the other transaction's end: the next try gets a slot.
    rec = await run_attempt(db_engine, spec(booking_id, rid, version), planner)
    assert rec.outcome == "confirmed"


async def test_a_dead_connection_releases_its_slot_at_once(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    async with db_engine.connect() as holder:
        await holder.begin()
        assert await slots.TRY_SLOT.value(await driver(holder), n=1, r=rid) == 1
        pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with db_engine.connect() as other:
            assert await slots.TRY_SLOT.value(await driver(other), n=1, r=rid) is None
            # The worker holding it dies (its connection is gone): no lease to wait out.
            await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            for _ in range(50):
                await other.rollback()
                got = await slots.TRY_SLOT.value(await driver(other), n=1, r=rid)
                if got == 1:
                    break
                await asyncio.sleep(0.05)
            assert got == 1
            await other.rollback()
        assert holder.sync_connection is not None
        holder.sync_connection.invalidate()


async def test_no_slot_outlives_its_attempt_and_the_bound_holds(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"r-{unique_id}"
    tables = [{"id": f"T{i}", "capacity": 4} for i in range(1, 13)]
    await import_plan(db_engine, floorplan(rid, tables))
    pending = [await pending_booking(db_engine, rid, 2) for _ in range(12)]
    before = await advisory_locks(db_engine)
    results = await asyncio.gather(*(
        run_attempt(db_engine, spec(b, rid, v, slot_wait_seconds=5.0), planner) for b, v in pending))
    assert {r.outcome for r in results} == {"confirmed"}
    assert await advisory_locks(db_engine) == before
    ids = [b for b, _ in pending]
    peak = await scalar(db_engine,
                        "SELECT max(c) FROM (SELECT (SELECT count(*) FROM permit_intervals q "
                        "WHERE q.restaurant_id = p.restaurant_id AND q.acquired_at <= "
                        "p.acquired_at AND q.released_at > p.acquired_at) AS c FROM "
                        "permit_intervals p WHERE p.booking_id = ANY(CAST(:ids AS uuid[]))) x",
                        ids=ids)
    assert 1 <= peak <= 2


async def test_the_one_statement_snapshot_matches_the_six_query_one(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    from seatflow.storage.restaurants import load_attempt_inputs, snapshot_from_json

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(
        rid, [{"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 2},
              {"id": "T3", "capacity": 4, "zone": "window"}],
        adjacency=[["T1", "T2"]], zones=["main", "window"]))
    seated, version = await pending_booking(db_engine, rid, 2)
    await run_attempt(db_engine, spec(seated, rid, version), planner)
    await new_booking(db_engine, rid, 3)  # known, not yet seated
    booking_id, _ = await pending_booking(db_engine, rid, 2)
    async with connection(db_engine) as raw:
        row = await load_attempt_inputs(raw, booking_id, 3)
        one = snapshot_from_json(rid, row)
    async with db_engine.begin() as conn:
        six = await load_snapshot(conn, rid, row["start_at"], row["occupied_until"],
                                  exclude_booking=booking_id)
    assert one == six
    assert one.allocations and one.known_bookings and one.adjacency


async def test_the_attempt_read_takes_the_holds_gate_shared_with_its_slot_only(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    # With a slot, the read holds the restaurant's holds gate shared for the
    # transaction (a hold grant, exclusive, waits for it) and `place` takes it
    # no more; without a slot (another process's poll) it takes none.
    from seatflow.storage.restaurants import load_attempt_inputs

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking_id, _ = await pending_booking(db_engine, rid, 2)
    gate = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' "
            "AND pid = pg_backend_pid() AND classid = CAST(hashtext('seatflow.holds:' || :r) "
            "AS oid) AND objid = 0")
    for n_slots, held in ((3, 1), (0, 0)):
        async with connection(db_engine) as conn:
            row = await load_attempt_inputs(conn, booking_id, n_slots)
            assert (row["slot"] is not None, row["gated"]) == (bool(held), bool(held))
            assert await statement(gate).value(conn, r=rid) == held
        async with connection(db_engine) as conn:  # released with its transaction
            assert await statement(gate).value(conn, r=rid) == 0


async def test_a_plan_partly_taken_leaves_no_partial_allocation(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    from seatflow.storage.placement import allocate

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2},
                                                 {"id": "T2", "capacity": 2}],
                                           adjacency=[["T1", "T2"]]))
    taken, version = await pending_booking(db_engine, rid, 2)
    rec = await run_attempt(db_engine, spec(taken, rid, version), planner)
    held = rec.tables[0]
    booking_id, _ = await pending_booking(db_engine, rid, 2)
    row = (await fetch(db_engine, "SELECT start_at, occupied_until FROM bookings WHERE "
                       "id = CAST(:b AS uuid)", b=booking_id))[0]
    async with connection(db_engine) as conn:
        why = await allocate(conn, booking_id, rid, ("T1", "T2"), row[0], row[1])
        assert why is not None and "taken" in why
        left = await statement("SELECT count(*) FROM allocations WHERE booking_id = "
                               "CAST(:b AS uuid)").value(conn, b=booking_id)
        assert left == 0
        free = "T2" if held == "T1" else "T1"
        assert await allocate(conn, booking_id, rid, (free,), row[0], row[1]) is None
    assert await booking_tables(db_engine, booking_id) == [free]


async def test_a_chain_of_transitions_writes_what_one_by_one_transitions_write(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    from seatflow.storage.transitions import Step, transition, transitions

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    meta = {"tables": ["T1"], "strategy": "optimal_fit", "score": 1.5, "attempt_no": 1}
    cols = {"status": "confirmed", "assignment_strategy": "optimal_fit",
            "assignment_pipeline": "v3"}
    written: dict[str, dict[str, Any]] = {}
    for how in ("one by one", "chain"):
        booking_id, version = await pending_booking(db_engine, rid, 2)
        async with connection(db_engine) as conn:
            version = await transition(conn, booking_id, version, S.ASSIGNMENT_IN_PROGRESS)
            if how == "one by one":
                version = await transition(conn, booking_id, version, S.ASSIGNED,
                                           reason="plan T1", metadata=meta)
                version = await transition(conn, booking_id, version, S.CONFIRMED,
                                           reason="confirmed", set_columns=cols)
            else:
                version = await transitions(conn, booking_id, version,
                                            S.ASSIGNMENT_IN_PROGRESS,
                                            [Step(S.ASSIGNED, reason="plan T1", metadata=meta),
                                             Step(S.CONFIRMED, reason="confirmed")],
                                            set_columns=cols)
        b = booking_id
        written[how] = {
            "version": version,
            "booking": await fetch(db_engine, "SELECT assignment_state, assignment_state_version, "
                                   "last_reason, status, assignment_strategy, assignment_pipeline, "
                                   "settled_at IS NOT NULL FROM bookings WHERE id = "
                                   "CAST(:b AS uuid)", b=b),
            "history": await fetch(db_engine, "SELECT from_state, to_state, version, reason, "
                                   "actor, metadata FROM booking_assignment_state_history "
                                   "WHERE booking_id = CAST(:b AS uuid) ORDER BY version", b=b),
            "events": await fetch(db_engine, "SELECT source, event_type, context FROM "
                                  "observability_events WHERE booking_id = CAST(:b AS uuid) "
                                  "ORDER BY id", b=b),
            "outbox": await fetch(db_engine, "SELECT topic, replace(dedupe_key, :b, 'B'), "
                                  "payload - 'booking_id' FROM state_event_outbox WHERE "
                                  "booking_id = CAST(:b AS uuid) ORDER BY id", b=b),
        }
    assert written["chain"] == written["one by one"]
    assert [h[1] for h in written["chain"]["history"]][-2:] == ["assigned", "confirmed"]


async def test_a_chain_refuses_an_illegal_step_and_writes_nothing(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    import pytest

    from seatflow.domain.states import IllegalTransition
    from seatflow.storage.transitions import Step, transitions

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 4}]))
    booking_id, version = await pending_booking(db_engine, rid, 2)
    with pytest.raises(IllegalTransition):
        async with connection(db_engine) as conn:
            await transitions(conn, booking_id, version, S.ASSIGNMENT_PENDING,
                              [Step(S.ASSIGNED), Step(S.CONFIRMED)])
    assert await scalar(db_engine, "SELECT assignment_state_version FROM bookings WHERE "
                        "id = CAST(:b AS uuid)", b=booking_id) == version
