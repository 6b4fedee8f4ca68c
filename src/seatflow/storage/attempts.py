"""An assignment in ONE transaction: an automatic attempt, or an operator's
assignment of chosen tables.

The automatic attempt:

    take a slot -> read the floor -> plan ->
      confirmed (allocations; assignment_in_progress, assigned, confirmed in one
        statement; attempt row, event, email outbox)
      or the failed attempt (assignment_in_progress and the state the workflow
        chose in one statement; attempt row)
    -> commit, which releases the slot.

An attempt that dies half way leaves nothing behind, and the restaurant slot
is held for the attempt's own work only (milliseconds), never across
workflow activations. Both kinds place through `storage.placement` (one
allocation statement, one bookkeeping statement, one retry-after-commit
check). The planner and the operator-plan check are passed in, so storage
stays free of the engine and of Temporal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.assignment import MANUAL_STRATEGY, AttemptOutcome
from seatflow.domain.planning import BookingRequest, Move, Plan, RestaurantSnapshot
from seatflow.domain.states import AssignmentState
from seatflow.storage import slots
from seatflow.storage.db import Driver, connection
from seatflow.storage.placement import (
    Bookkeeping,
    Placed,
    committed_attempt,
    confirm_placed,
    place,
    record_failed,
)
from seatflow.storage.restaurants import _json, load_attempt_inputs, snapshot_from_json
from seatflow.storage.transitions import BookingNotFound, Step, transitions

S = AssignmentState
# The strategy a booking seated on the tables of its hold records.
HELD_STRATEGY = "held"


@dataclass(frozen=True)
class SearchOutcome:
    """What the planner found: the plans best first, re-packing moves, why not."""

    plans: tuple[Plan, ...]
    moves: tuple[Move, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class AttemptSpec:
    booking_id: str
    restaurant_id: str
    expected_version: int
    attempt_no: int
    on_failure: AssignmentState  # assignment_pending | manual_review
    max_parallel: int
    slot_wait_seconds: float
    waited_ms: float = 0.0
    pipeline: str = "v3"
    decision_inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptRecord:
    outcome: AttemptOutcome
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    wait_ms: float = 0.0
    hold_ms: float = 0.0
    search_ms: float = 0.0
    # Moved (re-packed) bookings with a `table_changed` email queued (only at
    # a restaurant that promises tables); the workflow sends each.
    notify: tuple[str, ...] = ()
    as_of: str = ""  # database time of the floor the attempt planned on


@dataclass(frozen=True)
class OperatorAssignment:
    """An operator seats a booking in manual review on `tables`."""

    booking_id: str
    expected_version: int
    attempt_no: int
    tables: tuple[str, ...]
    actor: str
    pipeline: str = "v3"
    note: str | None = None
    force: bool = False


Planner = Callable[[RestaurantSnapshot, BookingRequest], SearchOutcome]
# (snapshot, request, tables) -> (why the plan is refused, the rule `force` overrode)
PlanCheck = Callable[[RestaurantSnapshot, BookingRequest, tuple[str, ...]],
                     tuple[str | None, str | None]]


async def run_attempt(engine: AsyncEngine, spec: AttemptSpec, plan: Planner) -> AttemptRecord:
    """Run one attempt; see the module docstring. Raises BookingNotFound;
    infrastructure errors propagate (the caller retries; nothing was written)."""
    started = time.perf_counter()
    deadline = started + spec.slot_wait_seconds
    try:
        async with (
            slots.local_slot(spec.restaurant_id, spec.max_parallel, spec.slot_wait_seconds),
            connection(engine) as conn,
        ):
            return await _attempt_in_tx(conn, spec, plan, deadline, started)
    except slots.SlotBusy:
        waited = spec.waited_ms + (time.perf_counter() - started) * 1000
        return AttemptRecord(AttemptOutcome.BUSY, S.ASSIGNMENT_PENDING.value,
                             spec.expected_version,
                             reason="every slot of the restaurant is busy",
                             wait_ms=round(waited, 3))


async def _attempt_in_tx(conn: Driver, spec: AttemptSpec, plan: Planner,
                         deadline: float, started: float) -> AttemptRecord:
    row = await load_attempt_inputs(conn, spec.booking_id, spec.max_parallel)
    if row is None:
        raise BookingNotFound(spec.booking_id)
    slot, gated = row["slot"], bool(row["gated"])
    if slot is None:  # other worker processes hold every slot: poll briefly
        slot = await slots.take_db_slot(conn, row["restaurant_id"], spec.max_parallel, deadline)
        # The floor may have changed while we waited: read it again, taking no
        # further slot (0 slots to try), so the attempt holds exactly one.
        row = await load_attempt_inputs(conn, spec.booking_id, 0)
    # Waited: earlier busy tries, this process's queue, other processes' slots.
    wait_ms = spec.waited_ms + (time.perf_counter() - started) * 1000
    held_from = time.perf_counter()
    state, version = str(row["assignment_state"]), int(row["assignment_state_version"])
    if version != spec.expected_version:
        return await _already_done_or_conflict(conn, spec.booking_id, spec.pipeline,
                                               spec.attempt_no, state, version,
                                               spec.expected_version)
    # pending -> assignment_in_progress is written with the attempt's outcome,
    # in the same statement (one round trip less; the transaction makes it
    # visible at the same moment as before: its commit).
    lead: tuple[Step, ...] = ()
    if state == S.ASSIGNMENT_PENDING:
        lead = (Step(S.ASSIGNMENT_IN_PROGRESS, metadata={
            "attempt_no": spec.attempt_no, "pipeline": spec.pipeline,
            "decision": spec.decision_inputs, "permit_wait_ms": round(wait_ms, 3)}),)
    elif state != S.ASSIGNMENT_IN_PROGRESS:
        return AttemptRecord(AttemptOutcome.CONFLICT, state, version,
                             reason=f"booking is {state}, not awaiting assignment")
    restaurant_id = row["restaurant_id"]
    request = _request(spec.booking_id, row)
    snapshot = snapshot_from_json(restaurant_id, row)
    t0 = time.perf_counter()
    found, placed = SearchOutcome(()), Placed(None)
    held = tuple(_json(row["held"]))
    if held:  # booked on a hold (storage.holds): its tables first, without a search
        found = SearchOutcome((Plan(tables=held, score=0.0, strategy=HELD_STRATEGY),))
        placed = await place(conn, spec.booking_id, restaurant_id, found.plans, (),
                             row["start_at"], row["occupied_until"], gated=gated)
        gated = True  # taken now, for the rest of the transaction
    if placed.chosen is None:  # no hold, or its tables went out of service: plan
        found = plan(snapshot, request)
        placed = await place(conn, spec.booking_id, restaurant_id, found.plans,
                             found.moves, row["start_at"], row["occupied_until"], gated=gated)
    search_ms = (time.perf_counter() - t0) * 1000
    book = Bookkeeping(attempt_no=spec.attempt_no, pipeline=spec.pipeline, wait_ms=wait_ms,
                       slot=slot, acquired_at=row["as_of"],
                       context={"moves": len(found.moves) if placed.chosen else 0})
    timing = {"wait_ms": round(wait_ms, 3), "search_ms": round(search_ms, 3),
              "as_of": row["as_of"].isoformat()}
    if placed.chosen is None:
        reason = failure_reason(placed, found.reason)
        version = await transitions(conn, spec.booking_id, version, S(state), [
            *lead, Step(spec.on_failure, reason=reason,
                        metadata={"attempt_no": spec.attempt_no, "pipeline": spec.pipeline})])
        await record_failed(conn, spec.booking_id, restaurant_id, placed, book, reason)
        return AttemptRecord(AttemptOutcome.FAILED, spec.on_failure.value, version,
                             reason=reason, **timing,
                             hold_ms=round((time.perf_counter() - held_from) * 1000, 3))
    tables, version = await confirm_placed(
        conn, spec.booking_id, row, S(state), version, placed, book,
        reason=f"plan {','.join(sorted(placed.chosen.tables))}", metadata={}, lead=lead)
    return AttemptRecord(AttemptOutcome.CONFIRMED, S.CONFIRMED.value, version, tables=tables,
                         strategy=placed.chosen.strategy, notify=placed.notify, **timing,
                         hold_ms=round((time.perf_counter() - held_from) * 1000, 3))


def failure_reason(placed: Placed, planner_reason: str | None) -> str:
    """Why an attempt seated nobody, as the operator reads it."""
    if placed.tried:
        return f"all {len(placed.tried)} plans were taken at confirm time"
    return "; ".join(placed.reasons) or planner_reason or "no valid plan"


async def assign_tables(engine: AsyncEngine, spec: OperatorAssignment,
                        check: PlanCheck) -> AttemptRecord:
    """An operator's assignment, in one transaction: the plan is checked like
    any plan against the floor as it is now (`check`: the engine's rules, with
    `spec.force` overriding what an operator may override, recorded with the
    actor); refused, nothing changes and the record says why. Otherwise the
    booking is placed and confirmed exactly like an automatic attempt."""
    async with connection(engine) as conn:
        row = await load_attempt_inputs(conn, spec.booking_id, 0)
        if row is None:
            raise BookingNotFound(spec.booking_id)
        state, version = str(row["assignment_state"]), int(row["assignment_state_version"])
        if version != spec.expected_version:
            return await _already_done_or_conflict(conn, spec.booking_id, spec.pipeline,
                                                   spec.attempt_no, state, version,
                                                   spec.expected_version)
        tables = tuple(sorted(spec.tables))
        snapshot = snapshot_from_json(row["restaurant_id"], row)
        problem, overridden = check(snapshot, _request(spec.booking_id, row), tables)
        if problem is not None:
            return AttemptRecord(AttemptOutcome.FAILED, state, version, reason=problem)
        chosen = Plan(tables=tables, score=0.0, strategy=MANUAL_STRATEGY)
        placed = await place(conn, spec.booking_id, row["restaurant_id"], (chosen,), (),
                             row["start_at"], row["occupied_until"])
        if placed.chosen is None:
            return AttemptRecord(AttemptOutcome.FAILED, state, version,
                                 reason="; ".join(placed.reasons))
        reason = f"manual assignment by {spec.actor}"
        meta: dict[str, Any] = {"note": spec.note} if spec.note else {}
        if overridden is not None:
            reason += f", forced over: {overridden}"
            meta.update(force=True, overridden=overridden)
        book = Bookkeeping(attempt_no=spec.attempt_no, pipeline=spec.pipeline, actor=spec.actor,
                           context={"moves": 0, "force": overridden is not None})
        tables, version = await confirm_placed(conn, spec.booking_id, row, S(state), version,
                                               placed, book, reason=reason, metadata=meta)
        return AttemptRecord(AttemptOutcome.CONFIRMED, S.CONFIRMED.value, version,
                             tables=tables, strategy=MANUAL_STRATEGY)


def _request(booking_id: str, row: Any) -> BookingRequest:
    return BookingRequest(booking_id=booking_id, party_size=row["party_size"],
                          start=row["start_at"], end=row["occupied_until"],
                          zone_preference=row["zone_preference"])


async def _already_done_or_conflict(conn: Driver, booking_id: str, pipeline: str,
                                    attempt_no: int, state: str, version: int,
                                    expected: int) -> AttemptRecord:
    """The version moved. If it was this very attempt (a retry after its
    commit, e.g. the worker died before Temporal recorded the result), report
    what it did, moved guests included; otherwise it is a conflict and
    nothing is written."""
    done = await committed_attempt(conn, booking_id, pipeline, attempt_no, state)
    if done is not None:
        return AttemptRecord(done.outcome, state, version, tables=done.tables,
                             strategy=done.strategy, reason=done.reason, notify=done.notify)
    return AttemptRecord(AttemptOutcome.CONFLICT, state, version,
                         reason=f"version conflict: expected {expected}, found {version}")


__all__ = ["AttemptRecord", "AttemptSpec", "OperatorAssignment", "SearchOutcome",
           "assign_tables", "run_attempt"]
