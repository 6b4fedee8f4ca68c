"""Holds (slot locks): a host application holds an offered time's tables
while its guest fills in the form, then books on the hold (`hold_id`), and
that booking confirms on them in its first attempt. The API
(`/v1/restaurants/{id}/holds`) and the CLI (`seatflow holds ...`) call these.

A hold is per holder (the API token's name) and restaurant; a holder keeps at
most `max_per_holder` unbooked holds at a restaurant at once. It lasts
`ttl_seconds` (SEATFLOW_HOLD_MINUTES); an expired hold stops counting by
itself. The engine picks the plan as for a booking, without re-packing: a
hold never moves a booking, and re-packing never moves a hold.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.holds import Hold
from seatflow.domain.localtime import local_time
from seatflow.domain.planning import BookingRequest, EngineConfig, Plan, RestaurantSnapshot
from seatflow.domain.restaurant import (
    DEFAULT_HORIZON_DAYS,
    InvalidBooking,
    booking_window,
    check_day,
    check_horizon,
    parse_start,
)
from seatflow.engine.availability import day_window
from seatflow.engine.search import search
from seatflow.service.availability import check_availability
from seatflow.service.bookings import BookingActionRefused, NotAvailable
from seatflow.service.cpu import run_cpu
from seatflow.storage import holds as store
from seatflow.storage.availability import consistent_read
from seatflow.storage.holds import HoldLimit
from seatflow.storage.restaurants import load_policy

__all__ = ["DEFAULT_MAX_PER_HOLDER", "DEFAULT_TTL_SECONDS", "Hold", "HoldLimit",
           "HoldNotFound", "hold_dict", "list_holds", "release_hold", "request_hold"]

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_MAX_PER_HOLDER = 20


class HoldNotFound(BookingActionRefused):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id} of this client at this restaurant",
                         code="hold_not_found")


async def request_hold(
    engine: AsyncEngine,
    restaurant_id: str,
    holder: str,
    *,
    party_size: int,
    start: str,
    config: EngineConfig,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    max_per_holder: int = DEFAULT_MAX_PER_HOLDER,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    now: datetime | None = None,
) -> Hold:
    """Hold a plan's tables for a party at `start` (ISO 8601, the
    restaurant's local time without an offset). Raises InvalidBooking
    (unknown restaurant, bad party, past, outside service, beyond the
    horizon), HoldLimit, or NotAvailable with the nearest available times."""
    now = now or datetime.now(UTC)
    async with consistent_read(engine) as conn:
        policy = await load_policy(conn, restaurant_id)
    if policy is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    when = parse_start(start, policy.timezone)
    check_horizon(when, now, horizon_days)
    window = booking_window(policy, party_size, when, now=now)
    no_repack = replace(config, repack=False)

    async def plans(snapshot: RestaurantSnapshot, request: BookingRequest) -> tuple[Plan, ...]:
        found = await run_cpu(search, snapshot, request, no_repack, now=now)
        return tuple(found.plans)

    hold = await store.grant_hold(
        engine, restaurant_id, holder, party_size, window.start, window.occupied_until,
        ttl_seconds=ttl_seconds, max_per_holder=max_per_holder, plan=plans)
    if hold is not None:
        return hold
    # Nothing to hold: name the nearest times that are free now (holds count).
    found = await check_availability(
        engine, restaurant_id, party_size, day=window.start.astimezone(policy.tz).date(),
        config=config, now=now, horizon_days=horizon_days)
    nearest = [t for t in found.nearest(window.start, 4) if t != window.start][:3]
    offered = ", ".join(local_time(t, policy.timezone, "%H:%M", named=False)
                        for t in nearest) or "none that day"
    raise NotAvailable(
        f"no table to hold for a party of {party_size} at "
        f"{local_time(window.start, policy.timezone)}; nearest available: {offered}",
        start=window.start, nearest=nearest)


async def release_hold(engine: AsyncEngine, restaurant_id: str, holder: str,
                       hold_id: str) -> None:
    """Release the holder's hold now. Raises HoldNotFound, or
    BookingActionRefused `hold_used` when a booking was made on it."""
    done = await store.release_hold(engine, restaurant_id, holder, hold_id)
    if done == "not_found":
        raise HoldNotFound(hold_id)
    if done == "booked":
        raise BookingActionRefused(f"hold {hold_id} was booked on; cancel the booking instead",
                                   code="hold_used")


async def list_holds(engine: AsyncEngine, restaurant_id: str, *, day: date | None = None,
                     holder: str | None = None, now: datetime | None = None,
                     horizon_days: int = DEFAULT_HORIZON_DAYS) -> list[Hold]:
    """The restaurant's live holds, by start: those meeting its local `day`
    (every one without), of `holder` only when given (the API lists the
    token's own; the CLI and the host's timeline every holder's). Raises
    InvalidBooking for an unknown restaurant or a day outside the horizon."""
    async with consistent_read(engine) as conn:
        policy = await load_policy(conn, restaurant_id)
    if policy is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    if day is None:
        return await store.live_holds(engine, restaurant_id, holder=holder)
    check_day(day, now or datetime.now(UTC), horizon_days)
    lo, hi = day_window(policy, day)
    return await store.live_holds(engine, restaurant_id, lo=lo, hi=hi, holder=holder)


def hold_dict(hold: Hold, timezone: str | None = None) -> dict[str, Any]:
    """A hold as the API and the CLI's JSON show it."""
    def at(t: datetime) -> str:
        return (t.astimezone(ZoneInfo(timezone)) if timezone else t).isoformat()
    return {"hold_id": hold.hold_id, "restaurant_id": hold.restaurant_id,
            "party_size": hold.party_size, "start": at(hold.start), "until": at(hold.until),
            "tables": list(hold.tables), "expires_at": hold.expires_at.isoformat(),
            "booking_id": hold.booking_id}


