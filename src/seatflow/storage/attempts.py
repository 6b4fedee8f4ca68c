"""One automatic assignment attempt as ONE transaction.

take a slot -> assignment_in_progress -> read the floor -> search ->
  confirmed (allocations, assigned, confirmed, attempt row, event, email outbox)
  or the failed attempt (the state the workflow chose, attempt row)
-> commit, which releases the slot.

Every transition goes through `transitions.transition` (optimistic version
check, history, event and outbox rows), exactly as when the steps ran as
separate activities; what changes is that they commit together, so an
attempt that dies half way leaves nothing behind, and the restaurant slot
is held for the attempt's own work only (milliseconds), never across
workflow activations.

The search itself is passed in (`plan`), so storage stays free of the engine
and of Temporal: callers hand in a function from (snapshot, request) to the
engine's result.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.mail import confirmation_email
from seatflow.domain.planning import BookingRequest, Move, Plan, RestaurantSnapshot
from seatflow.domain.states import AssignmentState
from seatflow.storage import slots
from seatflow.storage.confirm import (
    NothingAllocated,
    PlanUnavailable,
    allocate,
    apply_moves,
    booking_tables,
    email_booking,
)
from seatflow.storage.restaurants import load_attempt_inputs, snapshot_from_json
from seatflow.storage.transitions import (
    BookingNotFound,
    Step,
    transition,
    transitions,
)

S = AssignmentState


@dataclass(frozen=True)
class SearchOutcome:
    """What the engine found: the plans best first, re-packing moves, why not."""

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
    # search in a worker thread, not on the event loop: for a search that may
    # take hundreds of ms (the deep re-pack of a retry), which would otherwise
    # stall every other booking this worker process is running
    offload_search: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    outcome: str  # confirmed | failed | busy | conflict
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    wait_ms: float = 0.0
    hold_ms: float = 0.0
    search_ms: float = 0.0
    # Moved (re-packed) bookings whose guest was already emailed: a
    # `table_changed` email is queued for each; the workflow sends it.
    notify: tuple[str, ...] = ()


Planner = Callable[[RestaurantSnapshot, BookingRequest], SearchOutcome]

# The attempt's bookkeeping after a confirm, in one statement: confirmed_at,
# the attempt row, the booking.confirmed event, the slot's interval and the
# confirmation email in the outbox.
CONFIRM_BOOKKEEPING = text(
    "WITH ts AS (UPDATE bookings SET confirmed_at = clock_timestamp() "
    "  WHERE id = CAST(:id AS uuid) RETURNING id), "
    "att AS (INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, "
    "  strategy, result, reason, plans_tried, permit_wait_ms) VALUES (CAST(:id AS uuid), :n, "
    "  :p, :s, 'confirmed', NULL, CAST(:plans AS jsonb), :w) "
    "  ON CONFLICT (booking_id, pipeline, attempt_no) DO NOTHING), "
    "ev AS (INSERT INTO observability_events (booking_id, restaurant_id, source, event_type, "
    "  context) VALUES (CAST(:id AS uuid), :r, 'assignment.confirm', 'booking.confirmed', "
    "  CAST(:ctx AS jsonb))), "
    "iv AS (INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
    "  released_at, wait_ms) VALUES (:r, CAST(:id AS uuid), :slot, :acq, clock_timestamp(), :w)), "
    "em AS (INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
    "  VALUES (CAST(:id AS uuid), 'confirmation', :to, :subject, :body) "
    "  ON CONFLICT (booking_id, kind) DO NOTHING) "
    "SELECT 1"
)

# A plan's tables in one statement, without a savepoint: the exclusion
# constraint's conflicts are skipped (ON CONFLICT DO NOTHING applies to
# exclusion constraints too), and a plan that got fewer rows than tables is
# removed again before the next plan is tried.
ALLOCATE = text(
    "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
    "SELECT CAST(:b AS uuid), :r, t.id, tstzrange(:s, :e, '[)') "
    "FROM dining_tables t JOIN zones z ON z.restaurant_id = t.restaurant_id "
    "AND z.id = t.zone_id WHERE t.restaurant_id = :r AND t.code = ANY(:codes) "
    "AND t.active AND z.active AND t.status = 'available' "
    "ON CONFLICT DO NOTHING RETURNING table_id"
)
UNDO_ALLOCATION = text("DELETE FROM allocations WHERE booking_id = CAST(:b AS uuid)")

FAILED_BOOKKEEPING = text(
    "WITH att AS (INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, "
    "  strategy, result, reason, plans_tried, permit_wait_ms) VALUES (CAST(:id AS uuid), :n, "
    "  :p, NULL, :res, :reason, CAST(:plans AS jsonb), :w) "
    "  ON CONFLICT (booking_id, pipeline, attempt_no) DO NOTHING), "
    "iv AS (INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
    "  released_at, wait_ms) VALUES (:r, CAST(:id AS uuid), :slot, :acq, clock_timestamp(), :w)) "
    "SELECT 1"
)


async def run_attempt(engine: AsyncEngine, spec: AttemptSpec, plan: Planner, *,
                      now: datetime) -> AttemptRecord:
    """Run one attempt; see the module docstring. Raises BookingNotFound;
    infrastructure errors propagate (the caller retries; nothing was written)."""
    started = time.perf_counter()
    deadline = started + spec.slot_wait_seconds
    try:
        async with (
            slots.local_slot(spec.restaurant_id, spec.max_parallel, spec.slot_wait_seconds),
            engine.begin() as conn,
        ):
            return await _attempt_in_tx(conn, spec, plan, deadline, started)
    except slots.SlotBusy:
        waited = spec.waited_ms + (time.perf_counter() - started) * 1000
        return AttemptRecord("busy", S.ASSIGNMENT_PENDING.value, spec.expected_version,
                             reason="every slot of the restaurant is busy",
                             wait_ms=round(waited, 3))


async def _attempt_in_tx(conn: AsyncConnection, spec: AttemptSpec, plan: Planner,
                         deadline: float, started: float) -> AttemptRecord:
    row = await load_attempt_inputs(conn, spec.booking_id, spec.max_parallel)
    if row is None:
        raise BookingNotFound(spec.booking_id)
    slot = row.slot
    if slot is None:  # other worker processes hold every slot: poll briefly
        slot = await slots.take_db_slot(conn, row.restaurant_id, spec.max_parallel, deadline)
        # The floor may have changed while we waited: read it again, taking no
        # further slot (0 slots to try), so the attempt holds exactly one.
        row = await load_attempt_inputs(conn, spec.booking_id, 0)
    # Waited: earlier busy tries, this process's queue, other processes' slots.
    wait_ms = spec.waited_ms + (time.perf_counter() - started) * 1000
    acquired = row.as_of  # the slot was taken in the statement that read it
    held_from = time.perf_counter()
    state, version = str(row.assignment_state), int(row.assignment_state_version)
    if version != spec.expected_version:
        return await _already_done_or_conflict(conn, spec, state, version)
    if state == S.ASSIGNMENT_PENDING:
        version = await transition(
            conn, spec.booking_id, version, S.ASSIGNMENT_IN_PROGRESS,
            metadata={"attempt_no": spec.attempt_no, "pipeline": spec.pipeline,
                      "decision": spec.decision_inputs, "permit_wait_ms": round(wait_ms, 3)},
        )
    elif state != S.ASSIGNMENT_IN_PROGRESS:
        return AttemptRecord("conflict", state, version,
                             reason=f"booking is {state}, not awaiting assignment")
    request = BookingRequest(
        booking_id=spec.booking_id, party_size=row.party_size, start=row.start_at,
        end=row.occupied_until, zone_preference=row.zone_preference,
    )
    snapshot = snapshot_from_json(row.restaurant_id, row)
    t0 = time.perf_counter()
    if spec.offload_search:
        found = await asyncio.to_thread(plan, snapshot, request)
    else:
        found = plan(snapshot, request)
    search_ms = (time.perf_counter() - t0) * 1000
    chosen, tried, reasons, notify = await _place(conn, spec.booking_id, row.restaurant_id, found,
                                          row.start_at, row.occupied_until)
    common = {"id": spec.booking_id, "n": spec.attempt_no, "p": spec.pipeline,
              "plans": json.dumps([list(t) for t in tried]), "w": round(wait_ms, 3),
              "r": row.restaurant_id, "slot": slot, "acq": acquired}
    if chosen is None:
        if tried:
            reason = f"all {len(tried)} plans were taken at confirm time"
        else:
            reason = "; ".join(reasons) or found.reason or "no valid plan"
        to_state = spec.on_failure
        version = await transition(
            conn, spec.booking_id, version, to_state, reason=reason,
            metadata={"attempt_no": spec.attempt_no, "pipeline": spec.pipeline},
        )
        await conn.execute(FAILED_BOOKKEEPING, {
            **common, "res": "all_plans_taken" if tried else "no_plan", "reason": reason})
        return AttemptRecord("failed", to_state.value, version, reason=reason,
                             wait_ms=round(wait_ms, 3), search_ms=round(search_ms, 3),
                             hold_ms=round((time.perf_counter() - held_from) * 1000, 3))
    tables = tuple(sorted(chosen.tables))
    # assigned, then confirmed: two transitions written in one statement.
    version = await transitions(
        conn, spec.booking_id, version, S.ASSIGNMENT_IN_PROGRESS, [
            Step(S.ASSIGNED, reason=f"plan {','.join(tables)}",
                 metadata={"tables": list(tables), "strategy": chosen.strategy,
                           "score": chosen.score, "attempt_no": spec.attempt_no,
                           "pipeline": spec.pipeline}),
            Step(S.CONFIRMED, reason="confirmed"),
        ],
        set_columns={"status": "confirmed", "assignment_strategy": chosen.strategy,
                     "assignment_pipeline": spec.pipeline},
    )
    subject, body = confirmation_email(email_booking(spec.booking_id, row), tables)
    await conn.execute(CONFIRM_BOOKKEEPING, {
        **common, "s": chosen.strategy, "to": row.guest_email, "subject": subject, "body": body,
        "ctx": json.dumps({"tables": list(tables), "strategy": chosen.strategy,
                           "pipeline": spec.pipeline, "attempt_no": spec.attempt_no,
                           "actor": None, "moves": len(found.moves)}),
    })
    return AttemptRecord("confirmed", S.CONFIRMED.value, version, tables=tables,
                         strategy=chosen.strategy, wait_ms=round(wait_ms, 3), notify=notify,
                         search_ms=round(search_ms, 3),
                         hold_ms=round((time.perf_counter() - held_from) * 1000, 3))


async def _place(conn: AsyncConnection, booking_id: str, restaurant_id: str,
                 found: SearchOutcome, start: datetime, until: datetime
                 ) -> tuple[Plan | None, list[tuple[str, ...]], list[str], tuple[str, ...]]:
    """Allocate the first plan still free. With re-packing moves, the moves and
    the allocation share one savepoint: both or neither. Returns (plan, plans
    tried, why not, moved bookings whose guest must get a `table_changed` email)."""
    tried: list[tuple[str, ...]] = []
    reasons: list[str] = []
    if not found.plans:
        return None, tried, reasons, ()
    if not found.moves:
        for candidate in found.plans:
            tables = tuple(sorted(candidate.tables))
            tried.append(tables)
            why = await _allocate_fast(conn, booking_id, restaurant_id, tables, start, until)
            if why is None:
                return candidate, tried, reasons, ()
            reasons.append(why)
        return None, tried, reasons, ()
    chosen: Plan | None = None
    notify: tuple[str, ...] = ()
    try:
        async with conn.begin_nested():
            try:
                notify = await apply_moves(conn, booking_id, restaurant_id, found.moves)
            except PlanUnavailable as exc:
                raise PlanUnavailable(f"re-packing failed: {exc}") from None
            for candidate in found.plans:
                tables = tuple(sorted(candidate.tables))
                tried.append(tables)
                why = await allocate(conn, booking_id, restaurant_id, tables, start, until)
                if why is None:
                    chosen = candidate
                    break
                reasons.append(why)
            if chosen is None:
                raise NothingAllocated  # the moves were for nothing: roll them back
    except PlanUnavailable as exc:
        return None, tried, [*reasons, str(exc)], ()
    except NothingAllocated:
        return None, tried, reasons, ()
    return chosen, tried, reasons, notify


async def _allocate_fast(conn: AsyncConnection, booking_id: str, restaurant_id: str,
                         tables: tuple[str, ...], start: datetime, until: datetime) -> str | None:
    got = (await conn.execute(ALLOCATE, {"b": booking_id, "r": restaurant_id, "s": start,
                                         "e": until, "codes": list(tables)})).all()
    if len(got) == len(tables):
        return None
    if got:
        await conn.execute(UNDO_ALLOCATION, {"b": booking_id})
    return f"tables {','.join(tables)} taken by a concurrent booking or out of service"


async def _already_done_or_conflict(conn: AsyncConnection, spec: AttemptSpec, state: str,
                                    version: int) -> AttemptRecord:
    """The version moved. If it was this very attempt (a retry after its
    commit, e.g. the worker died before Temporal recorded the result), report
    what it did; otherwise it is a conflict and nothing is written."""
    done = (await conn.execute(
        text("SELECT result, reason FROM booking_assignment_attempts WHERE booking_id = "
             "CAST(:id AS uuid) AND pipeline = :p AND attempt_no = :n"),
        {"id": spec.booking_id, "p": spec.pipeline, "n": spec.attempt_no})).one_or_none()
    if done is not None and done.result == "confirmed" and state == S.CONFIRMED:
        tables = await booking_tables(conn, spec.booking_id)
        strategy = (await conn.execute(
            text("SELECT assignment_strategy FROM bookings WHERE id = CAST(:id AS uuid)"),
            {"id": spec.booking_id})).scalar_one()
        return AttemptRecord("confirmed", state, version, tables=tables, strategy=strategy)
    if done is not None and done.result != "confirmed":
        return AttemptRecord("failed", state, version, reason=done.reason)
    return AttemptRecord(
        "conflict", state, version,
        reason=f"version conflict: expected {spec.expected_version}, found {version}")


__all__ = ["AttemptRecord", "AttemptSpec", "SearchOutcome", "run_attempt"]
