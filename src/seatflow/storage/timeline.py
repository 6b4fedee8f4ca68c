"""The host timeline's read: a restaurant's floor and one day's bookings, in
one consistent read-only transaction (`seatflow.service.timeline` lays it out).

No guest name or address leaves the database here: only the initial of the
name is selected."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.assignment import AttemptOutcome
from seatflow.domain.states import FINAL
from seatflow.domain.timeline import (
    TimelineBooking,
    TimelineFloor,
    TimelineTable,
    TimelineZone,
    day_bounds,
)
from seatflow.storage.availability import consistent_read
from seatflow.storage.restaurants import load_policy

GONE = sorted(state.value for state in FINAL)  # failed, cancelled: nothing to show

BOOKINGS = text(
    "SELECT b.id::text AS id, b.party_size, b.start_at, b.end_at, b.occupied_until, "
    "b.assignment_state, b.assignment_strategy, b.times_moved, b.last_reason, "
    "upper(left(btrim(b.guest_name), 1)) AS initial, "
    "ARRAY(SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
    "      WHERE a.booking_id = b.id ORDER BY t.code) AS tables, "
    "(SELECT count(*) FROM booking_assignment_attempts x WHERE x.booking_id = b.id "
    " AND x.result <> :confirmed) AS attempts, "
    "(SELECT max(h.created_at) FROM booking_assignment_state_history h "
    " WHERE h.booking_id = b.id AND h.to_state = b.assignment_state) AS since "
    "FROM bookings b WHERE b.restaurant_id = :r "
    "AND b.assignment_state <> ALL(CAST(:gone AS text[])) "
    "AND ((b.start_at >= :lo AND b.start_at < :hi) OR EXISTS ("
    "     SELECT 1 FROM allocations a WHERE a.booking_id = b.id "
    "     AND a.occupied && tstzrange(:lo, :hi, '[)'))) "
    "ORDER BY b.start_at, b.id"
)


async def load_timeline_floor(engine: AsyncEngine, restaurant_id: str, day: date | None,
                              now: datetime) -> TimelineFloor | None:
    """The restaurant's zones and tables, and the bookings of the local `day`
    (None: the restaurant's date at `now`) that are neither failed nor
    cancelled: those starting that day and those holding a table during it (a
    late booking of the evening before). None for an unknown restaurant."""
    async with consistent_read(engine) as conn:
        policy = await load_policy(conn, restaurant_id)
        if policy is None:
            return None
        tz = ZoneInfo(policy.timezone)
        day = day or now.astimezone(tz).date()
        lo, hi = day_bounds(day, tz)
        zones = (await conn.execute(
            text("SELECT id, name, active FROM zones WHERE restaurant_id = :r ORDER BY id"),
            {"r": restaurant_id})).all()
        tables = (await conn.execute(
            text("SELECT t.code, t.zone_id, t.capacity, t.min_party, t.max_party, "
                 "t.active AND z.active AS active FROM dining_tables t JOIN zones z "
                 "ON z.restaurant_id = t.restaurant_id AND z.id = t.zone_id "
                 "WHERE t.restaurant_id = :r ORDER BY t.code"),
            {"r": restaurant_id})).all()
        bookings = (await conn.execute(BOOKINGS, {
            "r": restaurant_id, "lo": lo, "hi": hi, "gone": GONE,
            "confirmed": AttemptOutcome.CONFIRMED.value})).all()
    return TimelineFloor(
        day=day,
        name=policy.name,
        timezone=policy.timezone,
        services=policy.services,
        zones=tuple(TimelineZone(z.id, z.name, bool(z.active)) for z in zones),
        tables=tuple(TimelineTable(t.code, t.zone_id, t.capacity, t.min_party, t.max_party,
                                   bool(t.active)) for t in tables),
        bookings=tuple(
            TimelineBooking(
                booking_id=b.id, party_size=b.party_size, start=b.start_at, end=b.end_at,
                occupied_until=b.occupied_until, state=b.assignment_state,
                strategy=b.assignment_strategy, times_moved=b.times_moved or 0,
                last_reason=b.last_reason, guest_initial=b.initial or None,
                tables=tuple(b.tables or ()), attempts=int(b.attempts), since=b.since)
            for b in bookings),
    )
