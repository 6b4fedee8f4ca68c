"""The host's timeline of one day: the restaurant's tables by zone, the
bookings seated on them over their occupied windows, the bookings still
waiting for a table (the manual-review queue among them) and the holds.

`GET /v1/restaurants/{id}/timeline` answers `day_timeline` as it is, and the
host page (`/host/{id}`) draws it. It carries no guest name or address: a
booking shows the initial of the guest's name and its short id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.assignment import MANUAL_STRATEGY
from seatflow.domain.restaurant import DEFAULT_HORIZON_DAYS, InvalidBooking
from seatflow.domain.states import AWAITING_OPERATOR, UNSEATED
from seatflow.domain.timeline import TimelineBooking, TimelineFloor, timeline_window
from seatflow.service.bookings import table_order
from seatflow.service.holds import list_holds
from seatflow.storage.timeline import load_timeline_floor


async def day_timeline(
    engine: AsyncEngine,
    restaurant_id: str,
    day: date | None = None,
    *,
    now: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> dict[str, Any]:
    """The timeline of the restaurant's local `day` (default: today on its
    clock) as JSON values. Raises InvalidBooking: `unknown_restaurant`, or
    `beyond_horizon` for a day more than `horizon_days` (the booking horizon)
    ahead of or behind today."""
    now = now or datetime.now(UTC)
    if day is not None and abs((day - now.date()).days) > horizon_days + 1:
        raise InvalidBooking(
            "beyond_horizon", f"{day} is more than {horizon_days} days from today "
            f"(the timeline reaches as far as the booking horizon, both ways)")
    floor = await load_timeline_floor(engine, restaurant_id, day, now)
    if floor is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    tz = ZoneInfo(floor.timezone)
    day = floor.day
    # A live hold shades its tables; a hold whose booking is seated is gone
    # (the attempt that confirms it deletes it), so nothing is drawn twice.
    holds = (await list_holds(engine, restaurant_id, day=day, now=now, horizon_days=horizon_days)
             if day >= (now - timedelta(days=1)).date() else [])  # a past day has none live
    seated = [b for b in floor.bookings if b.tables]
    waiting = [b for b in floor.bookings if not b.tables and b.state in UNSEATED]
    # The axis: the day's services, widened to what starts that day.
    spans = [(b.start, b.occupied_until) for b in floor.bookings
             if b.start.astimezone(tz).date() == day]
    spans += [(h.start, h.until) for h in holds]
    lo, hi = timeline_window(day, tz, floor.services, spans)
    return {
        "restaurant_id": restaurant_id,
        "name": floor.name,
        "timezone": floor.timezone,
        "date": day.isoformat(),
        "as_of": now.isoformat(),
        "window_start": lo.astimezone(tz).isoformat(),
        "window_end": hi.astimezone(tz).isoformat(),
        "services": [{"name": s.name, "start": s.start.strftime("%H:%M"),
                      "end": s.end.strftime("%H:%M")} for s in floor.services],
        "zones": _zones(floor, {t for b in seated for t in b.tables}),
        "bookings": [_seated(b, tz) for b in seated],
        "waiting": [_waiting(b, tz) for b in waiting],
        "holds": [{"hold_id": h.hold_id, "tables": sorted(h.tables, key=table_order),
                   "start": h.start.astimezone(tz).isoformat(),
                   "end": h.until.astimezone(tz).isoformat(), "label": h.label}
                  for h in holds],
    }


def _zones(floor: TimelineFloor, used: set[str]) -> list[dict[str, Any]]:
    """Active zones and tables (and any inactive one a booking of the day is
    on), the largest zone first, tables in floor-plan order."""
    names = {z.id: z for z in floor.zones}
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for t in sorted(floor.tables, key=lambda t: table_order(t.code)):
        if t.active or t.code in used:
            by_zone.setdefault(t.zone, []).append(
                {"id": t.code, "seats": t.seats, "min_party": t.min_party,
                 "max_party": t.max_party, "active": t.active})
    zones = [{"id": zid, "name": names[zid].name if zid in names else zid,
              "seats": sum(t["seats"] for t in tables if t["active"]), "tables": tables}
             for zid, tables in by_zone.items()]
    return sorted(zones, key=lambda z: (-z["seats"], z["id"]))


def _common(b: TimelineBooking, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "booking_id": b.booking_id, "short_id": b.short_id, "party_size": b.party_size,
        "guest_initial": b.guest_initial, "state": b.state,
        "start": b.start.astimezone(tz).isoformat(), "end": b.end.astimezone(tz).isoformat(),
        "occupied_until": b.occupied_until.astimezone(tz).isoformat(),
    }


def _seated(b: TimelineBooking, tz: ZoneInfo) -> dict[str, Any]:
    return {**_common(b, tz), "tables": sorted(b.tables, key=table_order),
            "moved": b.times_moved > 0, "times_moved": b.times_moved,
            "by_operator": b.strategy == MANUAL_STRATEGY}


def _waiting(b: TimelineBooking, tz: ZoneInfo) -> dict[str, Any]:
    return {**_common(b, tz), "in_review": b.state in AWAITING_OPERATOR,
            "reason": b.last_reason, "attempts": b.attempts,
            "since": b.since.astimezone(tz).isoformat() if b.since else None}

