"""Holds (slot locks), inside PostgreSQL.

A hold takes the tables of one plan for a party and a time for a few minutes,
so that availability, the assignment attempts and other holds see them as
taken, while a host application's guest fills in the form; the booking made
on it (`bookings ... hold_id`) then confirms on those tables in its first
attempt (`storage.attempts`). A hold is live while it has not expired, or
while the booking that claimed it still awaits its tables; an expired hold
simply stops counting (`restaurants.LIVE_HOLD`), nothing sweeps it. A
booking confirmed on its hold deletes it (`placement.CONFIRM_BOOKKEEPING`).

Races: a grant takes the restaurant's holds gate exclusively (`HOLDS_GATE`),
and every placement of tables takes it shared (`placement.place`) before its
allocation statement. So a grant reads every allocation committed before it,
and an allocation made after it sees the hold: two clients never hold, or
hold and book, the same table-minute. Grants of one restaurant are thereby
serialized with each other; attempts still run in parallel with each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.holds import Hold
from seatflow.domain.planning import BookingRequest, Plan, RestaurantSnapshot
from seatflow.domain.restaurant import InvalidBooking
from seatflow.storage.restaurants import HOLDS_GATE, LIVE_HOLD, UNSEATED_STATES, load_snapshot

# The planner a grant runs (the engine, without re-packing: a hold never
# moves a booking), awaited so the caller may run it off the event loop.
HoldPlanner = Callable[[RestaurantSnapshot, BookingRequest], Awaitable[tuple[Plan, ...]]]

GRANT = text(
    "WITH free AS (SELECT t.id FROM dining_tables t JOIN zones z "
    "  ON z.restaurant_id = t.restaurant_id AND z.id = t.zone_id "
    "  WHERE t.restaurant_id = :r AND t.code = ANY(:codes) AND t.active AND z.active "
    "  AND t.status = 'available' "
    "  AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.table_id = t.id "
    "    AND a.occupied && tstzrange(:s, :e, '[)')) "
    "  AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.restaurant_id = :r "
    "    AND t.id = ANY(h.table_ids) AND h.occupied && tstzrange(:s, :e, '[)') "
    f"   AND {LIVE_HOLD})) "
    "INSERT INTO holds (id, restaurant_id, holder, party_size, start_at, occupied, table_ids, "
    "  expires_at) "
    "SELECT CAST(:id AS uuid), :r, :holder, :p, :s, tstzrange(:s, :e, '[)'), "
    "  array_agg(free.id ORDER BY free.id), clock_timestamp() + make_interval(secs => :ttl) "
    "FROM free HAVING count(*) = CAST(:n AS integer) "
    "RETURNING expires_at"
)
HELD_BY = text(
    "SELECT count(*) FROM holds h WHERE h.restaurant_id = :r AND h.holder = :holder "
    "AND h.booking_id IS NULL AND h.expires_at > clock_timestamp()"
)
HOLD_ROW = text(
    "SELECT h.id::text AS id, h.restaurant_id, h.holder, h.party_size, h.start_at, "
    "upper(h.occupied) AS until, h.booking_id::text AS booking_id, "
    "h.expires_at > clock_timestamp() AS live "
    "FROM holds h WHERE h.id = CAST(:id AS uuid) FOR UPDATE"
)
LIVE_HOLDS = text(
    "SELECT h.id::text AS id, h.holder, h.party_size, h.start_at, upper(h.occupied) AS until, "
    "h.expires_at, h.booking_id::text AS booking_id, "
    "ARRAY(SELECT t.code FROM dining_tables t WHERE t.id = ANY(h.table_ids) ORDER BY t.code) "
    "  AS tables "
    "FROM holds h WHERE h.restaurant_id = :r "
    "AND h.occupied && tstzrange(CAST(:lo AS timestamptz), CAST(:hi AS timestamptz), '[)') "
    "AND (CAST(:holder AS text) IS NULL OR h.holder = CAST(:holder AS text)) "
    f"AND {LIVE_HOLD} ORDER BY h.start_at, h.id"
)


class HoldLimit(InvalidBooking):
    """The holder already holds its maximum of unbooked holds at this restaurant."""

    def __init__(self, limit: int) -> None:
        super().__init__("hold_limit", f"this client already holds {limit} tables' times at "
                         "this restaurant (the most it may hold at once); book on one or "
                         "release one first")
        self.limit = limit


async def grant_hold(engine: AsyncEngine, restaurant_id: str, holder: str, party_size: int,
                     start: datetime, until: datetime, *, ttl_seconds: float,
                     max_per_holder: int, plan: HoldPlanner) -> Hold | None:
    """Hold the first free plan `plan` finds for the party over [start, until)
    for `ttl_seconds`; None when there is none (nothing written). Raises
    HoldLimit when `holder` already holds `max_per_holder` unbooked holds here."""
    hold_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(HOLDS_GATE, {"r": restaurant_id})
        held = (await conn.execute(HELD_BY, {"r": restaurant_id, "holder": holder})).scalar()
        if int(held or 0) >= max_per_holder:
            raise HoldLimit(max_per_holder)
        snapshot = await load_snapshot(conn, restaurant_id, start, until)
        request = BookingRequest(booking_id=f"hold:{hold_id}", party_size=party_size,
                                 start=start, end=until)
        for candidate in await plan(snapshot, request):
            tables = tuple(sorted(candidate.tables))
            expires = (await conn.execute(GRANT, {
                "id": hold_id, "r": restaurant_id, "holder": holder, "p": party_size,
                "s": start, "e": until, "codes": list(tables), "n": len(tables),
                "ttl": float(ttl_seconds), "unseated": UNSEATED_STATES,
            })).scalar()
            if expires is not None:
                return Hold(hold_id, restaurant_id, holder, party_size, start, until, tables,
                            expires)
    return None


async def release_hold(engine: AsyncEngine, restaurant_id: str, holder: str,
                       hold_id: str) -> str:
    """Release a hold: 'released', 'not_found' (none of this holder here) or
    'booked' (a booking claimed it: cancel the booking instead)."""
    async with engine.begin() as conn:
        row = await _hold_row(conn, hold_id)
        if row is None or row.restaurant_id != restaurant_id or row.holder != holder:
            return "not_found"
        if row.booking_id is not None:
            return "booked"
        await conn.execute(text("DELETE FROM holds WHERE id = CAST(:id AS uuid)"),
                           {"id": hold_id})
        return "released"


async def claim_hold(conn: AsyncConnection, *, hold_id: str, holder: str | None,
                     restaurant_id: str, booking_id: str, party_size: int,
                     start: datetime) -> None:
    """Inside the booking's insert transaction: the hold becomes the booking's
    (it stays live until the booking is seated or settled). Raises
    InvalidBooking (the caller's transaction rolls back): `hold_not_found`
    (unknown, another holder's or restaurant's), `hold_expired`, `hold_used`
    (another booking claimed it), `hold_mismatch` (another party or time)."""
    row = await _hold_row(conn, hold_id)
    if row is None or row.restaurant_id != restaurant_id or (
            holder is not None and row.holder != holder):
        raise InvalidBooking("hold_not_found", f"no hold {hold_id} of this client at "
                             f"restaurant {restaurant_id}")
    if row.booking_id is not None:
        raise InvalidBooking("hold_used", f"hold {hold_id} was already used by booking "
                             f"{row.booking_id}")
    if not row.live:
        raise InvalidBooking("hold_expired", f"hold {hold_id} has expired; its tables may be "
                             "taken: ask a new hold (or book without one)")
    if row.party_size != party_size or row.start_at != start:
        raise InvalidBooking(
            "hold_mismatch", f"hold {hold_id} is for a party of {row.party_size} at "
            f"{row.start_at.isoformat()}; the booking asks {party_size} at {start.isoformat()}")
    await conn.execute(
        text("UPDATE holds SET booking_id = CAST(:b AS uuid) WHERE id = CAST(:id AS uuid)"),
        {"b": booking_id, "id": hold_id})


async def live_holds(engine: AsyncEngine, restaurant_id: str, *, lo: datetime | None = None,
                     hi: datetime | None = None, holder: str | None = None) -> list[Hold]:
    """The restaurant's live holds (of `holder` only, when given) whose
    occupied interval meets [lo, hi) (unbounded where None), by start."""
    async with engine.connect() as conn:
        rows = (await conn.execute(LIVE_HOLDS, {"r": restaurant_id, "lo": lo, "hi": hi,
                                                "holder": holder,
                                                "unseated": UNSEATED_STATES})).all()
    return [Hold(r.id, restaurant_id, r.holder, r.party_size, r.start_at, r.until,
                 tuple(r.tables), r.expires_at, r.booking_id) for r in rows]


async def _hold_row(conn: AsyncConnection, hold_id: str) -> Any:
    try:
        uuid.UUID(hold_id)
    except ValueError:
        return None
    return (await conn.execute(HOLD_ROW, {"id": hold_id})).one_or_none()
