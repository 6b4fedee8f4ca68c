"""Versioned state transitions: the one way a booking's assignment state changes.

Every transition names the version it read and bumps it (optimistic check),
and in the same transaction writes a state-history row, an
`observability_events` row and a state outbox row with dedupe key
`{booking_id}:{version}`. `change_tables` is the same versioned write for a
booking that moves tables and keeps its state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from seatflow.breaker import BreakerEvent

from seatflow.domain.states import (
    ALLOWED_TRANSITIONS,
    SETTLED,
    TABLE_CHANGE_STATES,
    AssignmentState,
    IllegalTransition,
    check_transition,
)
from seatflow.storage.db import Driver, Statement, connection, statement

# The only booking columns a transition may set beside the state: their names
# are written into the SQL text, so they come from this list, never a caller.
SETTABLE_COLUMNS = frozenset({"status", "assignment_strategy", "assignment_pipeline"})


class VersionConflict(RuntimeError):
    def __init__(self, booking_id: str, expected: int, actual: int, state: str):
        super().__init__(
            f"booking {booking_id}: version conflict (expected {expected}, found {actual} "
            f"in state {state})"
        )
        self.booking_id = booking_id
        self.expected = expected
        self.actual = actual
        self.state = state


class BookingNotFound(LookupError):
    def __init__(self, booking_id: str):
        super().__init__(f"booking {booking_id} not found")
        self.booking_id = booking_id


CURRENT_STATE = statement(
    "SELECT assignment_state, assignment_state_version FROM bookings WHERE id = CAST(:id AS uuid)")


async def current_state(conn: Driver, booking_id: str) -> tuple[str, int]:
    row = await CURRENT_STATE.row(conn, id=booking_id)
    if row is None:
        raise BookingNotFound(booking_id)
    return str(row[0]), int(row[1])


RECORD_EVENT = statement(
    "INSERT INTO observability_events (booking_id, restaurant_id, source, event_type, context) "
    "VALUES (CAST(:b AS uuid), COALESCE(:r, (SELECT restaurant_id FROM bookings "
    "WHERE id = CAST(:b AS uuid))), :s, :t, CAST(:c AS jsonb))"
)


async def record_event(
    conn: Driver,
    *,
    source: str,
    event_type: str,
    context: dict[str, Any],
    booking_id: str | None = None,
    restaurant_id: str | None = None,
) -> None:
    await RECORD_EVENT.run(conn, b=booking_id, r=restaurant_id, s=source, t=event_type,
                           c=json.dumps(context, default=str))


async def transition(
    conn: Driver,
    booking_id: str,
    expected_version: int,
    to_state: AssignmentState | str,
    *,
    reason: str | None = None,
    actor: str | None = None,
    metadata: dict[str, Any] | None = None,
    set_columns: dict[str, Any] | None = None,
) -> int:
    """Move the booking to `to_state` if it is still at `expected_version`.

    Returns the new version. Raises VersionConflict (and changes nothing) when
    the version moved, IllegalTransition when the state machine forbids it.
    Must run inside the caller's transaction.
    """
    target = AssignmentState(to_state)
    allowed_from = sorted(s.value for s, targets in ALLOWED_TRANSITIONS.items() if target in targets)
    return await _versioned_write(
        conn, booking_id, expected_version, target, allowed_from, reason=reason, actor=actor,
        metadata=metadata, set_columns=set_columns,
        event_type="booking.assignment_state_transition",
        topic=f"booking.assignment_state.{target.value}",
        settles=target in SETTLED,
    )


async def change_tables(
    conn: Driver,
    booking_id: str,
    expected_version: int,
    *,
    from_tables: tuple[str, ...],
    to_tables: tuple[str, ...],
    reason: str,
    actor: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> int:
    """Record that a booking moved tables without changing state (re-packing, an
    operator's move): like a transition, it names the version it read, bumps
    it, and writes a history row (state to the same state), a
    `booking.tables_changed` event and a state outbox row, or nothing.
    The caller moves the allocations in the same transaction."""
    state, _version = await current_state(conn, booking_id)
    meta = {**(metadata or {}), "from_tables": list(from_tables), "to_tables": list(to_tables)}
    try:
        target = AssignmentState(state)
    except ValueError:
        target = AssignmentState.CONFIRMED
    return await _versioned_write(
        conn, booking_id, expected_version, target,
        sorted(s.value for s in TABLE_CHANGE_STATES), reason=reason, actor=actor,
        metadata=meta, set_columns=None, event_type="booking.tables_changed",
        topic="booking.tables_changed", settles=False,
    )


def _assignments(settles: bool, columns: tuple[str, ...]) -> str:
    """The SET list's tail: settled_at, and the SETTABLE_COLUMNS set beside the state."""
    settled = ", settled_at = clock_timestamp()" if settles else ""
    return settled + "".join(f", {col} = :c_{col}" for col in columns)


# The booking row, locked, when it is at the expected version and in a state
# the transition may leave: what both one-statement writes start from.
_PREV = (
    "WITH prev AS (SELECT assignment_state AS s, restaurant_id AS r FROM bookings "
    "  WHERE id = CAST(:id AS uuid) AND assignment_state_version = :v "
    "  AND assignment_state = ANY(CAST(:allowed AS text[])) FOR UPDATE), "
)


def _update(settles: bool, columns: tuple[str, ...]) -> str:
    """The booking's new state and version (and the columns set beside it)."""
    return (
        "upd AS (UPDATE bookings b SET assignment_state = :to, "
        "  assignment_state_version = :nv, last_reason = COALESCE(:reason, last_reason), "
        f"  updated_at = clock_timestamp(){_assignments(settles, columns)} FROM prev "
        "  WHERE b.id = CAST(:id AS uuid) AND b.assignment_state_version = :v "
        "  RETURNING b.id), "
    )


@functools.cache
def _write_sql(settles: bool, columns: tuple[str, ...]) -> Statement:
    """One transition in one statement: the optimistic check, the legality
    check, the update, and the history, event and outbox rows. Nothing is
    written unless all apply. One per (settles, columns): made once."""
    return statement(
        _PREV
        + _update(settles, columns)
        + "hist AS (INSERT INTO booking_assignment_state_history "
        "  (booking_id, from_state, to_state, version, reason, actor, metadata) "
        "  SELECT CAST(:id AS uuid), prev.s, :to, :nv, :reason, :actor, "
        "  CAST(:meta AS jsonb) FROM prev, upd), "
        "ev AS (INSERT INTO observability_events (booking_id, restaurant_id, source, "
        "  event_type, context) SELECT CAST(:id AS uuid), prev.r, "
        "  'assignment.state_machine', CAST(:evtype AS text), "
        "  jsonb_build_object('from', prev.s, 'to', CAST(:to AS text), "
        "  'version', CAST(:nv AS integer), 'metadata', CAST(:evmeta AS jsonb)) "
        "  FROM prev, upd), "
        "ob AS (INSERT INTO state_event_outbox (booking_id, topic, dedupe_key, payload) "
        "  SELECT CAST(:id AS uuid), :topic, :key, jsonb_build_object("
        "  'booking_id', CAST(:id AS text), 'from', prev.s, 'to', CAST(:to AS text), "
        "  'version', CAST(:nv AS integer), 'reason', CAST(:reason AS text)) "
        "  FROM prev, upd ON CONFLICT (dedupe_key) DO NOTHING) "
        "SELECT prev.s FROM prev, upd"
    )


async def _versioned_write(
    conn: Driver,
    booking_id: str,
    expected_version: int,
    target: AssignmentState,
    allowed_from: list[str],
    *,
    reason: str | None,
    actor: str | None,
    metadata: dict[str, Any] | None,
    set_columns: dict[str, Any] | None,
    event_type: str,
    topic: str,
    settles: bool,
) -> int:
    unknown = sorted(set(set_columns or {}) - SETTABLE_COLUMNS)
    if unknown:
        raise ValueError(
            f"transition() cannot set column(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(SETTABLE_COLUMNS))}"
        )
    new_version = expected_version + 1
    extra = dict(set_columns or {})
    params: dict[str, Any] = {f"c_{col}": val for col, val in extra.items()}
    meta = dict(metadata or {})
    row = await _write_sql(settles, tuple(extra)).row(
        conn, id=booking_id, v=expected_version, allowed=allowed_from, to=target.value,
        nv=new_version, reason=reason, actor=actor, meta=json.dumps(meta, default=str),
        evmeta=json.dumps({**meta, "reason": reason, "actor": actor}, default=str),
        topic=topic, evtype=event_type, key=f"{booking_id}:{new_version}", **params)
    if row is None:
        state, version = await current_state(conn, booking_id)
        if version != expected_version:
            raise VersionConflict(booking_id, expected_version, version, state)
        if state not in allowed_from:
            check_transition(booking_id, AssignmentState(state), target)
            raise IllegalTransition(booking_id, AssignmentState(state), target)
        raise VersionConflict(booking_id, expected_version, version, state)  # raced
    return new_version


@dataclass(frozen=True)
class Step:
    """One transition of a `transitions()` chain."""

    to_state: AssignmentState
    reason: str | None = None
    actor: str | None = None
    metadata: dict[str, Any] | None = None


@functools.cache
def _chain_sql(settles: bool, columns: tuple[str, ...]) -> Statement:
    """`transitions` in one statement: the steps are a JSON array (:steps)."""
    return statement(
        _PREV
        + "st AS (SELECT (x->>'n')::int AS n, x->>'from' AS f, x->>'to' AS t, "
        "  x->>'reason' AS reason, x->>'actor' AS actor, x->'meta' AS meta, "
        "  x->'evmeta' AS evmeta, x->>'topic' AS topic, x->>'key' AS key "
        "  FROM jsonb_array_elements(CAST(:steps AS jsonb)) AS x), "
        + _update(settles, columns)
        + "hist AS (INSERT INTO booking_assignment_state_history "
        "  (booking_id, from_state, to_state, version, reason, actor, metadata) "
        "  SELECT CAST(:id AS uuid), COALESCE(st.f, prev.s), st.t, :v + st.n, st.reason, "
        "  st.actor, st.meta FROM prev, upd, st ORDER BY st.n), "
        "ev AS (INSERT INTO observability_events (booking_id, restaurant_id, source, "
        "  event_type, context) SELECT CAST(:id AS uuid), prev.r, "
        "  'assignment.state_machine', 'booking.assignment_state_transition', "
        "  jsonb_build_object('from', COALESCE(st.f, prev.s), 'to', st.t, "
        "  'version', :v + st.n, 'metadata', st.evmeta) FROM prev, upd, st ORDER BY st.n), "
        "ob AS (INSERT INTO state_event_outbox (booking_id, topic, dedupe_key, payload) "
        "  SELECT CAST(:id AS uuid), st.topic, st.key, jsonb_build_object("
        "  'booking_id', CAST(:id AS text), 'from', COALESCE(st.f, prev.s), 'to', st.t, "
        "  'version', :v + st.n, 'reason', st.reason) FROM prev, upd, st ORDER BY st.n "
        "  ON CONFLICT (dedupe_key) DO NOTHING) "
        "SELECT prev.s FROM prev, upd"
    )


async def transitions(
    conn: Driver,
    booking_id: str,
    expected_version: int,
    current: AssignmentState,
    steps: list[Step],
    *,
    set_columns: dict[str, Any] | None = None,
) -> int:
    """Several transitions in ONE statement, written exactly as `transition`
    would write them one by one: one history row, one state-machine event and
    one outbox row per step, each with its own version; the booking ends in
    the last step's state (`set_columns` applied there). `current` is the state
    the caller read (under its row lock); every step is checked against the
    state machine first, and the statement re-checks the first against the row.
    Returns the new version. Raises VersionConflict or IllegalTransition and
    writes nothing."""
    if not steps:
        return expected_version
    state = current
    for step in steps:
        check_transition(booking_id, state, step.to_state)
        state = step.to_state
    unknown = sorted(set(set_columns or {}) - SETTABLE_COLUMNS)
    if unknown:
        raise ValueError(f"transitions() cannot set column(s) {', '.join(map(repr, unknown))}")
    final = steps[-1].to_state
    new_version = expected_version + len(steps)
    extra = dict(set_columns or {})
    params: dict[str, Any] = {f"c_{col}": val for col, val in extra.items()}
    last_reason = next((st.reason for st in reversed(steps) if st.reason), None)
    rows = []
    for n, st in enumerate(steps, start=1):
        meta = dict(st.metadata or {})
        rows.append({
            "n": n, "from": None if n == 1 else steps[n - 2].to_state.value,
            "to": st.to_state.value, "reason": st.reason, "actor": st.actor,
            "meta": meta, "evmeta": {**meta, "reason": st.reason, "actor": st.actor},
            "topic": f"booking.assignment_state.{st.to_state.value}",
            "key": f"{booking_id}:{expected_version + n}",
        })
    allowed_from = sorted(s.value for s, targets in ALLOWED_TRANSITIONS.items()
                          if steps[0].to_state in targets)
    row = await _chain_sql(any(st.to_state in SETTLED for st in steps), tuple(extra)).row(
        conn, id=booking_id, v=expected_version, allowed=allowed_from, to=final.value,
        nv=new_version, reason=last_reason, steps=json.dumps(rows, default=str), **params)
    if row is None:
        state_now, version = await current_state(conn, booking_id)
        raise VersionConflict(booking_id, expected_version, version, state_now)
    return new_version


ALREADY_APPLIED = statement(
    "SELECT 1 FROM booking_assignment_state_history WHERE booking_id = CAST(:id AS uuid) "
    "AND version = :v AND to_state = :t")


async def already_applied(
    conn: Driver, booking_id: str, expected_version: int, to_state: str
) -> bool:
    """True when a retried step finds its own transition already committed."""
    row = await ALREADY_APPLIED.row(conn, id=booking_id, v=expected_version + 1, t=to_state)
    return row is not None


async def write_breaker_events(
    conn: Driver, *, source: str, events: Iterable[BreakerEvent],
) -> None:
    """A circuit breaker's pending events (opened, closed: the database
    breaker's and the mail breaker's alike), in the caller's transaction.
    They are the breaker's record: `seatflow report` reads them back."""
    for event in events:
        await record_event(
            conn, source=source, event_type=event.event_type,
            context={**event.context, "at": event.at.isoformat()},
        )


async def save_breaker_events(
    engine: AsyncEngine, *, source: str, events: Iterable[BreakerEvent],
) -> None:
    """`write_breaker_events` in a transaction of its own."""
    async with connection(engine) as conn:
        await write_breaker_events(conn, source=source, events=events)


EVENT_EXISTS = statement(
    "SELECT 1 FROM observability_events WHERE booking_id = CAST(:b AS uuid) AND event_type = :t")


async def record_booking_event(
    engine: AsyncEngine, *, booking_id: str, source: str, event_type: str,
    context: dict[str, Any], restaurant_id: str | None = None, once: bool = False,
) -> bool:
    """One observability event about a booking, in a transaction of its own.
    With `once`, nothing is written when the booking already has an event of
    that type (a retried activity records it once). True when written."""
    async with connection(engine) as conn:
        if once and await EVENT_EXISTS.row(conn, b=booking_id, t=event_type) is not None:
            return False
        await record_event(conn, booking_id=booking_id, restaurant_id=restaurant_id,
                           source=source, event_type=event_type, context=context)
        return True
