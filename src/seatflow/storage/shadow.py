"""What shadow mode reads and writes: the floor as of a past moment, in a
read-only transaction, and its comparison and error events (the only rows the
shadow ever writes), read back by `seatflow shadow-report`."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.shadow import (
    COMPARISON_EVENT,
    ERROR_EVENT,
    EVENT_SOURCE,
    ShadowComparison,
    ShadowError,
    ShadowEvent,
    ShadowFloor,
)
from seatflow.domain.states import UNSEATED, AssignmentState
from seatflow.storage.db import connection, driver
from seatflow.storage.restaurants import (
    allocation_from_row,
    known_booking_from_row,
    load_policy,
    load_snapshot,
)
from seatflow.storage.transitions import record_event

LOOKAHEAD = timedelta(hours=3)  # as load_snapshot
S = AssignmentState


class ShadowBookingNotFound(LookupError):
    pass


async def read_only(conn: AsyncConnection) -> AsyncConnection:
    """One consistent, read-only transaction: PostgreSQL itself refuses writes."""
    return await conn.execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )


async def load_floor_as_of(engine: AsyncEngine, booking_id: str, as_of: datetime) -> ShadowFloor:
    """The floor as the legacy path saw it at `as_of`, the booking's own allocation
    excluded: allocations created by then, and bookings then still unseated.

    Tables, zones and adjacency are today's: floor-plan edits since `as_of` are
    not versioned. Allocations deleted since (a cancellation, a re-packing move)
    are gone and their tables look free. Raises ShadowBookingNotFound.
    """
    if not _is_uuid(booking_id):
        raise ShadowBookingNotFound(f"booking {booking_id!r} is not a booking id")
    async with engine.connect() as raw:
        conn = await read_only(raw)
        try:
            return await _floor_as_of(conn, booking_id, as_of)
        finally:
            await conn.rollback()


async def _floor_as_of(conn: AsyncConnection, booking_id: str, as_of: datetime) -> ShadowFloor:
    row = (
        await conn.execute(
            text(
                "SELECT restaurant_id, party_size, start_at, occupied_until, zone_preference "
                "FROM bookings WHERE id = CAST(:id AS uuid)"
            ),
            {"id": booking_id},
        )
    ).one_or_none()
    if row is None:
        raise ShadowBookingNotFound(f"booking {booking_id} not found")
    policy = await load_policy(conn, row.restaurant_id)
    floor = await load_snapshot(
        conn, row.restaurant_id, row.start_at, row.occupied_until,
        exclude_booking=booking_id, lookahead=LOOKAHEAD,
    )
    lo, hi = row.start_at - LOOKAHEAD, row.occupied_until + LOOKAHEAD
    allocs = (
        await conn.execute(
            text(
                "SELECT al.booking_id::text AS booking_id, t.code, lower(al.occupied) AS s, "
                "upper(al.occupied) AS e, b.party_size, b.start_at "
                "FROM allocations al JOIN dining_tables t ON t.id = al.table_id "
                "JOIN bookings b ON b.id = al.booking_id "
                "WHERE al.restaurant_id = :r AND al.occupied && tstzrange(:lo, :hi, '[)') "
                "AND al.booking_id <> CAST(:id AS uuid) AND al.created_at <= :as_of "
                "ORDER BY t.code, lower(al.occupied)"
            ),
            {"r": row.restaurant_id, "lo": lo, "hi": hi, "id": booking_id, "as_of": as_of},
        )
    ).all()
    known = (
        await conn.execute(
            text(
                "SELECT b.id::text AS id, b.party_size, b.start_at, b.occupied_until, "
                "b.zone_preference FROM bookings b "
                "WHERE b.restaurant_id = :r AND b.start_at >= :s AND b.start_at < :hi "
                "AND b.id <> CAST(:id AS uuid) AND b.created_at <= :as_of "
                "AND COALESCE((SELECT h.to_state FROM booking_assignment_state_history h "
                "  WHERE h.booking_id = b.id AND h.created_at <= :as_of "
                "  ORDER BY h.version DESC, h.id DESC LIMIT 1), 'created') = ANY(:unseated) "
                "AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.booking_id = b.id "
                "  AND a.created_at <= :as_of) "
                "ORDER BY b.start_at, b.id"
            ),
            {"r": row.restaurant_id, "s": row.start_at, "hi": hi, "id": booking_id,
             "as_of": as_of, "unseated": sorted(UNSEATED)},
        )
    ).all()
    snapshot = dataclasses.replace(
        floor,
        allocations=tuple(allocation_from_row(r) for r in allocs),
        known_bookings=tuple(known_booking_from_row(r) for r in known),
    )
    return ShadowFloor(
        restaurant_id=row.restaurant_id, party_size=row.party_size, start=row.start_at,
        end=row.occupied_until, zone_preference=row.zone_preference, policy=policy,
        snapshot=snapshot,
    )


async def record_comparison_once(engine: AsyncEngine, comparison: ShadowComparison) -> bool:
    """Write the one comparison event of a booking; False when it already exists.

    The advisory lock serialises concurrent writers of one booking (a retried
    activity, a re-run child), so the second finds the first event.
    """
    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"{COMPARISON_EVENT}:{comparison.booking_id}"},
        )
        exists = (
            await conn.execute(
                text(
                    "SELECT 1 FROM observability_events WHERE booking_id = CAST(:b AS uuid) "
                    "AND event_type = :t LIMIT 1"
                ),
                {"b": comparison.booking_id, "t": COMPARISON_EVENT},
            )
        ).first()
        if exists is not None:
            return False
        await record_event(
            await driver(conn),
            source=EVENT_SOURCE,
            event_type=COMPARISON_EVENT,
            context=comparison.context(),
            booking_id=comparison.booking_id,
            restaurant_id=comparison.restaurant_id or None,
        )
    return True


async def record_error(engine: AsyncEngine, error: ShadowError) -> None:
    """One error event; a booking id that is not a UUID is kept in the context only."""
    booking_id = error.booking_id if _is_uuid(error.booking_id) else None
    async with connection(engine) as conn:
        await record_event(
            conn,
            source=EVENT_SOURCE,
            event_type=ERROR_EVENT,
            context={
                "booking_id": error.booking_id,
                "stage": error.stage,
                "error": error.error,
                "error_type": error.error_type,
                "legacy": {"outcome": error.legacy_outcome},
            },
            booking_id=booking_id,
            restaurant_id=error.restaurant_id or None,
        )


async def load_events(
    engine: AsyncEngine, event_type: str, *, since: datetime | None = None,
    restaurant: str | None = None,
) -> list[ShadowEvent]:
    """Shadow events of one type, newest first, written since `since`, of one
    restaurant when given."""
    where = ["source = :source", "event_type = :t"]
    params: dict[str, Any] = {"source": EVENT_SOURCE, "t": event_type}
    if since is not None:
        where.append("created_at >= :since")
        params["since"] = since
    if restaurant is not None:
        where.append("restaurant_id = :restaurant")
        params["restaurant"] = restaurant
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT booking_id::text AS booking_id, restaurant_id, context, created_at "
                    f"FROM observability_events WHERE {' AND '.join(where)} "
                    "ORDER BY created_at DESC, id DESC"
                ),
                params,
            )
        ).all()
    return [ShadowEvent(booking_id=r.booking_id, restaurant_id=r.restaurant_id,
                        context=_json(r.context), at=r.created_at) for r in rows]


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    loaded = json.loads(value) if value else {}
    return loaded if isinstance(loaded, dict) else {}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
