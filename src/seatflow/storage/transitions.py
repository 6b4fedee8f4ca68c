"""Versioned state transitions: the one way a booking's assignment state changes.

Every transition names the version it read and bumps it (optimistic check),
and in the same transaction writes a state-history row, an
`observability_events` row and a state outbox row with dedupe key
`{booking_id}:{version}` (DESIGN.md section 4).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from seatflow.domain.states import AssignmentState, check_transition

TERMINAL_SETTLED = ("confirmed", "failed", "cancelled", "manual_review")


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


async def current_state(conn: AsyncConnection, booking_id: str) -> tuple[str, int]:
    row = (
        await conn.execute(
            text(
                "SELECT assignment_state, assignment_state_version FROM bookings "
                "WHERE id = CAST(:id AS uuid)"
            ),
            {"id": booking_id},
        )
    ).one_or_none()
    if row is None:
        raise BookingNotFound(booking_id)
    return str(row[0]), int(row[1])


async def record_event(
    conn: AsyncConnection,
    *,
    source: str,
    event_type: str,
    context: dict[str, Any],
    booking_id: str | None = None,
    restaurant_id: str | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO observability_events (booking_id, restaurant_id, source, event_type, context) "
            "VALUES (CAST(:b AS uuid), COALESCE(:r, (SELECT restaurant_id FROM bookings "
            "WHERE id = CAST(:b AS uuid))), :s, :t, CAST(:c AS jsonb))"
        ),
        {"b": booking_id, "r": restaurant_id, "s": source, "t": event_type,
         "c": json.dumps(context, default=str)},
    )


async def transition(
    conn: AsyncConnection,
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
    state, version = await current_state(conn, booking_id)
    if version != expected_version:
        raise VersionConflict(booking_id, expected_version, version, state)
    check_transition(booking_id, AssignmentState(state), target)
    new_version = version + 1
    extra = dict(set_columns or {})
    assignments = "".join(f", {col} = :c_{col}" for col in extra)
    params: dict[str, Any] = {f"c_{col}": val for col, val in extra.items()}
    settled = ", settled_at = clock_timestamp()" if target.value in TERMINAL_SETTLED else ""
    result = await conn.execute(
        text(
            "UPDATE bookings SET assignment_state = :to, assignment_state_version = :nv, "
            "last_reason = COALESCE(:reason, last_reason), updated_at = clock_timestamp()"
            f"{settled}{assignments} "
            "WHERE id = CAST(:id AS uuid) AND assignment_state_version = :v"
        ),
        {"to": target.value, "nv": new_version, "reason": reason, "id": booking_id,
         "v": expected_version, **params},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        state, version = await current_state(conn, booking_id)
        raise VersionConflict(booking_id, expected_version, version, state)
    meta = dict(metadata or {})
    await conn.execute(
        text(
            "INSERT INTO booking_assignment_state_history "
            "(booking_id, from_state, to_state, version, reason, actor, metadata) "
            "VALUES (CAST(:id AS uuid), :f, :t, :v, :reason, :actor, CAST(:m AS jsonb))"
        ),
        {"id": booking_id, "f": state, "t": target.value, "v": new_version, "reason": reason,
         "actor": actor, "m": json.dumps(meta, default=str)},
    )
    await record_event(
        conn,
        booking_id=booking_id,
        source="assignment.state_machine",
        event_type="booking.assignment_state_transition",
        context={"from": state, "to": target.value, "version": new_version,
                 "metadata": {**meta, "reason": reason, "actor": actor}},
    )
    await conn.execute(
        text(
            "INSERT INTO state_event_outbox (booking_id, topic, dedupe_key, payload) "
            "VALUES (CAST(:id AS uuid), :topic, :key, CAST(:p AS jsonb)) "
            "ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {"id": booking_id, "topic": f"booking.assignment_state.{target.value}",
         "key": f"{booking_id}:{new_version}",
         "p": json.dumps({"booking_id": booking_id, "from": state, "to": target.value,
                          "version": new_version, "reason": reason}, default=str)},
    )
    return new_version


async def already_applied(
    conn: AsyncConnection, booking_id: str, expected_version: int, to_state: str
) -> bool:
    """True when a retried step finds its own transition already committed."""
    row = (
        await conn.execute(
            text(
                "SELECT 1 FROM booking_assignment_state_history WHERE booking_id = CAST(:id AS uuid) "
                "AND version = :v AND to_state = :t"
            ),
            {"id": booking_id, "v": expected_version + 1, "t": to_state},
        )
    ).first()
    return row is not None
