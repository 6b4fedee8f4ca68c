"""An operator's assignment is checked like any plan, on real PostgreSQL: the
floor's rules hold unless the operator forces the overage, zone or adjacency
rule (recorded with the actor); capacity, fixed tables, and a taken or
inactive table are never overridden; a refusal records nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.assignment import AttemptOutcome
from seatflow.domain.planning import BookingRequest, RestaurantSnapshot
from seatflow.engine.validation import operator_plan_problem
from seatflow.storage.attempts import AttemptRecord, OperatorAssignment, assign_tables
from seatflow.storage.lifecycle import apply_transition, verify_booking
from tests.support import booking_tables, fetch, floorplan, import_plan, new_booking, scalar

TABLES = [
    {"id": "T2", "capacity": 2}, {"id": "T4", "capacity": 4}, {"id": "T8", "capacity": 8},
    {"id": "A", "capacity": 2}, {"id": "B", "capacity": 2},  # movable, not adjacent
    {"id": "F1", "capacity": 2, "mobility": "fixed"}, {"id": "F2", "capacity": 2, "mobility": "fixed"},
    {"id": "P1", "capacity": 2, "zone": "patio"},
]
EDGES = [["F1", "F2"], ["A", "P1"]]


async def counts(engine: AsyncEngine, booking: str) -> tuple[int, int, int, int]:
    row = (await fetch(engine, """
        SELECT (SELECT assignment_state_version FROM bookings WHERE id = CAST(:b AS uuid)),
               (SELECT count(*) FROM booking_assignment_state_history WHERE booking_id = CAST(:b AS uuid)),
               (SELECT count(*) FROM booking_assignment_attempts WHERE booking_id = CAST(:b AS uuid)),
               (SELECT count(*) FROM allocations WHERE booking_id = CAST(:b AS uuid))""", b=booking))[0]
    version, history, attempts, allocations = (int(x) for x in row)
    return version, history, attempts, allocations


async def assign(
    engine: AsyncEngine, booking: str, tables: tuple[str, ...], *, force: bool = False,
) -> AttemptRecord:
    """What the workflow's assign_tables activity does for `seatflow review assign`
    and the API's decision: the engine's operator check, then storage's placement."""
    version = int(await scalar(engine, "SELECT assignment_state_version FROM bookings "
                               "WHERE id = CAST(:b AS uuid)", b=booking))

    def check(snapshot: RestaurantSnapshot, request: BookingRequest,
              chosen: tuple[str, ...]) -> tuple[str | None, str | None]:
        return operator_plan_problem(snapshot, request, chosen, force=force)

    return await assign_tables(engine, OperatorAssignment(
        booking_id=booking, expected_version=version, attempt_no=1, tables=tables,
        actor="maria", force=force), check)


def confirmed(result: AttemptRecord) -> bool:
    return result.outcome == AttemptOutcome.CONFIRMED


@pytest.fixture
async def restaurant(db_engine: AsyncEngine, unique_id: str) -> str:
    rid = f"m-{unique_id}"
    await import_plan(db_engine, floorplan(rid, TABLES, adjacency=EDGES, zones=["main", "patio"]))
    return rid


async def booking_of(engine: AsyncEngine, rid: str, party: int) -> str:
    booking = await new_booking(engine, rid, party)
    verified = await verify_booking(engine, booking, now=datetime.now(UTC))
    moved = await apply_transition(engine, booking, verified.version, "assignment_in_progress")
    await apply_transition(engine, booking, moved.version, "manual_review")
    return booking


@pytest.mark.parametrize("party,tables,why", [
    (6, ("T4",), "4 seats cannot hold a party of 6"),        # capacity: never
    (4, ("F1", "F2"), "fixed tables cannot be joined"),      # fixed tables alone: never
])
async def test_refused_even_with_force_and_nothing_recorded(
    db_engine: AsyncEngine, restaurant: str, party: int, tables: tuple[str, ...], why: str,
) -> None:
    booking = await booking_of(db_engine, restaurant, party)
    before = await counts(db_engine, booking)
    for force in (False, True):
        result = await assign(db_engine, booking, tables, force=force)
        assert not confirmed(result) and why in str(result.reason)
        assert "--force" not in str(result.reason)
    assert await counts(db_engine, booking) == before


async def test_a_taken_or_out_of_service_table_is_refused_even_with_force(
    db_engine: AsyncEngine, restaurant: str,
) -> None:
    holder = await booking_of(db_engine, restaurant, 4)
    assert confirmed(await assign(db_engine, holder, ("T4",)))
    booking = await booking_of(db_engine, restaurant, 4)
    before = await counts(db_engine, booking)
    taken = await assign(db_engine, booking, ("T4",), force=True)
    assert not confirmed(taken) and "taken" in str(taken.reason)
    async with db_engine.begin() as conn:
        from sqlalchemy import text
        await conn.execute(text("UPDATE dining_tables SET status = 'out_of_service' "
                                "WHERE restaurant_id = :r AND code = 'T8'"), {"r": restaurant})
    closed = await assign(db_engine, booking, ("T8",), force=True)
    assert not confirmed(closed) and "out of service" in str(closed.reason)
    assert await counts(db_engine, booking) == before


@pytest.mark.parametrize("party,tables,rule", [
    (2, ("T8",), "more than the allowed 4"),                 # overage
    (4, ("A", "B"), "not adjacent"),                         # adjacency
    (4, ("A", "P1"), "different zones"),                     # zone
])
async def test_overage_zone_and_adjacency_need_force_which_is_recorded_with_the_actor(
    db_engine: AsyncEngine, restaurant: str, party: int, tables: tuple[str, ...], rule: str,
) -> None:
    booking = await booking_of(db_engine, restaurant, party)
    before = await counts(db_engine, booking)
    refused = await assign(db_engine, booking, tables)
    assert not confirmed(refused) and rule in str(refused.reason)
    assert "--force" in str(refused.reason)
    assert await counts(db_engine, booking) == before
    forced = await assign(db_engine, booking, tables, force=True)
    assert confirmed(forced) and forced.strategy == "manual"
    assert await booking_tables(db_engine, booking) == sorted(tables)
    history = await fetch(db_engine, "SELECT actor, reason, metadata FROM "
                          "booking_assignment_state_history WHERE booking_id = CAST(:b AS uuid) "
                          "AND to_state = 'assigned'", b=booking)
    actor, reason, metadata = history[0]
    assert actor == "maria" and "forced over" in reason and rule in reason
    assert metadata["force"] is True and rule in metadata["overridden"]


async def test_a_valid_assignment_needs_no_force_and_records_none(
    db_engine: AsyncEngine, restaurant: str,
) -> None:
    booking = await booking_of(db_engine, restaurant, 4)
    result = await assign(db_engine, booking, ("T4",))
    assert confirmed(result)
    metadata = (await fetch(db_engine, "SELECT metadata FROM booking_assignment_state_history "
                            "WHERE booking_id = CAST(:b AS uuid) AND to_state = 'assigned'",
                            b=booking))[0][0]
    assert "force" not in metadata
