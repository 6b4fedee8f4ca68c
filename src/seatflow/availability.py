"""Availability: which start times have a valid table plan right now.

For a restaurant, a party size and a day (or a window), every start time of
its services, `slot_minutes` apart from each service's opening, is checked
with the same rules as intake (`booking_window`: service hours, turn time,
buffer, not in the past) and the same engine search as the assignment
pipeline (`seatflow.engine.search`, re-packing included), over one read-only
snapshot of the restaurant's tables and allocations. Nothing is written.

`evaluate` is pure (tests and `bench/availability.py` call it with a snapshot
they build); `check_availability` reads the snapshot from PostgreSQL in one
REPEATABLE READ, READ ONLY transaction and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.config import Settings
from seatflow.domain.planning import (
    AdjacencyMode,
    BookingRequest,
    EngineConfig,
    RestaurantSnapshot,
)
from seatflow.domain.restaurant import (
    BookingWindow,
    InvalidBooking,
    RestaurantPolicy,
    booking_window,
)
from seatflow.engine import search
from seatflow.engine.combinations import enumerate_candidates
from seatflow.engine.floor import Floor
from seatflow.storage.restaurants import load_policy, load_snapshot, snapshot_time

# The id the engine sees for the booking being asked about (it holds nothing).
PROBE_BOOKING_ID = "availability-probe"
MAX_WINDOW = timedelta(days=2)
MAX_PARTY = 1000


@dataclass(frozen=True)
class Slot:
    """One start time and whether a party can be seated at it now."""

    start: datetime  # aware, in the restaurant's time zone
    end: datetime  # start + turn time
    service: str
    available: bool
    reason: str | None = None  # why not, for people; None when available
    repack: bool = False  # available only by moving bookings that have not started

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "service": self.service,
            "available": self.available,
            "reason": self.reason,
            "repack": self.repack,
        }


@dataclass(frozen=True)
class Availability:
    restaurant_id: str
    timezone: str
    party_size: int
    slot_minutes: int
    window_start: datetime
    window_end: datetime
    as_of: datetime
    slots: tuple[Slot, ...]

    @property
    def available_starts(self) -> list[datetime]:
        return [s.start for s in self.slots if s.available]

    def slot_at(self, start: datetime) -> Slot | None:
        return next((s for s in self.slots if s.start == start), None)

    def nearest(self, wanted: datetime, limit: int = 3) -> list[datetime]:
        """Available start times closest to `wanted` (earlier first on a tie)."""
        return nearest_times(self.available_starts, wanted, limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "restaurant_id": self.restaurant_id,
            "timezone": self.timezone,
            "party_size": self.party_size,
            "slot_minutes": self.slot_minutes,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "available": [s.isoformat() for s in self.available_starts],
            "slots": [s.to_dict() for s in self.slots],
        }


def engine_config(settings: Settings) -> EngineConfig:
    """The plan rules the worker uses (SEATFLOW_MAX_TABLES, _MAX_OVERAGE, _ADJACENCY_MODE)."""
    return EngineConfig(
        max_tables=settings.max_tables,
        max_overage=settings.max_overage,
        adjacency_mode=AdjacencyMode(settings.adjacency_mode),
    )


def nearest_times(times: Iterable[datetime], wanted: datetime, limit: int = 3) -> list[datetime]:
    ranked = sorted(times, key=lambda t: (abs((t - wanted).total_seconds()), t))
    return sorted(ranked[:limit])


def day_window(policy: RestaurantPolicy, day: date) -> tuple[datetime, datetime]:
    """The local calendar day [00:00, next 00:00) in the restaurant's time zone."""
    tz = policy.tz
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def candidate_starts(
    policy: RestaurantPolicy, window_start: datetime, window_end: datetime
) -> list[datetime]:
    """Start times in [window_start, window_end): each service's opening plus
    multiples of `slot_minutes` while the service is open, in local time.
    Local times that do not exist (a DST gap) are skipped."""
    tz = policy.tz
    step = timedelta(minutes=policy.slot_minutes)
    local_from = window_start.astimezone(tz)
    local_to = window_end.astimezone(tz)
    found: set[datetime] = set()
    day = local_from.date() - timedelta(days=1)  # a service past midnight opened the day before
    while day <= local_to.date():
        for service in policy.services:
            opens = datetime.combine(day, service.start)
            closes = datetime.combine(day, service.end)
            if closes <= opens:
                closes += timedelta(days=1)
            naive = opens
            while naive < closes:
                aware = naive.replace(tzinfo=tz)
                exists = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive
                if exists and window_start <= aware < window_end:
                    found.add(aware)
                naive += step
        day += timedelta(days=1)
    return sorted(found, key=lambda t: t.astimezone(UTC))


def validate_party(policy: RestaurantPolicy, party_size: int) -> None:
    if party_size < 1:
        raise InvalidBooking("party_not_positive", f"party size must be at least 1, got {party_size}")
    limit = policy.total_capacity or MAX_PARTY
    if party_size > limit:
        raise InvalidBooking(
            "party_exceeds_capacity",
            f"party of {party_size} exceeds {policy.id}'s total capacity of {limit}",
        )


def evaluate(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    *,
    now: datetime,
) -> list[Slot]:
    """Pure: whether each start time has a valid plan in `snapshot`, by the
    intake rules and the pipeline's search.

    A start time whose window has a valid plan among the free tables is
    available without ranking the plans (the search would return them all); only
    the others go through the full `search`, which also tries re-packing."""
    floor = Floor(snapshot)
    slots: list[Slot] = []
    for start in starts:
        try:
            window: BookingWindow = booking_window(policy, party_size, start, now=now)
        except InvalidBooking as exc:
            slots.append(Slot(start, start, "", False, reason=exc.message))
            continue
        local = start.astimezone(policy.tz)
        request = BookingRequest(
            booking_id=PROBE_BOOKING_ID, party_size=party_size,
            start=window.start, end=window.occupied_until,
        )
        free = floor.free_tables(request.start, request.end)
        if enumerate_candidates(
            floor, party_size, free, max_tables=config.max_tables,
            max_overage=config.max_overage, mode=config.adjacency_mode,
        ).candidates:
            slots.append(Slot(start=local, end=window.end.astimezone(policy.tz),
                              service=window.service, available=True))
            continue
        result = search(snapshot, request, config, now=now)
        slots.append(Slot(
            start=local, end=window.end.astimezone(policy.tz), service=window.service,
            available=result.found, reason=None if result.found else result.reason,
            repack=result.found and bool(result.moves),
        ))
    return slots


async def check_availability(
    engine: AsyncEngine,
    restaurant_id: str,
    party_size: int,
    *,
    day: date | None = None,
    window: tuple[datetime, datetime] | None = None,
    config: EngineConfig,
    now: datetime | None = None,
    also: datetime | None = None,
) -> Availability:
    """Availability for one party size over a local day or a window (one of
    them), from one read-only snapshot. `also` adds one start time off the
    slot grid (the time a guest asked for). Raises InvalidBooking for an
    unknown restaurant, a bad party size or a bad window."""
    if (day is None) == (window is None):
        raise InvalidBooking("bad_window", "give either a date or a window (from, to)")
    now = now or datetime.now(UTC)
    async with engine.connect() as conn:
        conn = await conn.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with conn.begin():
            policy = await load_policy(conn, restaurant_id)
            if policy is None:
                raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
            validate_party(policy, party_size)
            if day is not None:
                lo, hi = day_window(policy, day)
            else:
                assert window is not None
                lo, hi = window
                if lo.tzinfo is None:
                    lo = lo.replace(tzinfo=policy.tz)
                if hi.tzinfo is None:
                    hi = hi.replace(tzinfo=policy.tz)
                if hi <= lo:
                    raise InvalidBooking("bad_window", "the window ends before it starts")
                if hi - lo > MAX_WINDOW:
                    raise InvalidBooking(
                        "bad_window", f"the window is longer than {MAX_WINDOW.days} days"
                    )
            starts = candidate_starts(policy, lo, hi)
            if also is not None and also not in starts:
                starts = sorted([*starts, also], key=lambda t: t.astimezone(UTC))
            if starts:
                longest = max(
                    (b.minutes for s in policy.services for b in s.turn_times), default=0
                )
                span_end = starts[-1] + timedelta(minutes=longest + policy.buffer_minutes)
                snapshot = await load_snapshot(conn, restaurant_id, starts[0], span_end)
            else:
                snapshot = RestaurantSnapshot(restaurant_id=restaurant_id, tables=(), adjacency=())
            as_of = await snapshot_time(conn)
    slots = evaluate(snapshot, policy, party_size, starts, config, now=now)
    return Availability(
        restaurant_id=restaurant_id, timezone=policy.timezone, party_size=party_size,
        slot_minutes=policy.slot_minutes, window_start=lo.astimezone(policy.tz),
        window_end=hi.astimezone(policy.tz), as_of=as_of, slots=tuple(slots),
    )



async def check_start(
    engine: AsyncEngine,
    restaurant_id: str,
    party_size: int,
    start: datetime,
    *,
    config: EngineConfig,
    now: datetime | None = None,
    limit: int = 3,
) -> tuple[Slot, list[datetime]]:
    """Whether `start` has a valid plan now, and (when it has not) the `limit`
    nearest available start times of the same local day. Raises InvalidBooking
    (unknown restaurant, bad party, in the past, outside service) first.

    The asked time is checked alone first: a guest who gets it costs one
    evaluation, not the whole day's (intake with `require_availability` calls
    this for every booking); the day is evaluated only to name alternatives."""
    async with engine.connect() as conn:
        policy = await load_policy(conn, restaurant_id)
    if policy is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=policy.tz)
    # A booking that can never be seated as asked is invalid, not "unavailable".
    booking_window(policy, party_size, start, now=now or datetime.now(UTC))
    alone = await check_availability(
        engine, restaurant_id, party_size, window=(start, start + timedelta(seconds=1)),
        config=config, now=now, also=start,
    )
    slot = alone.slot_at(start)
    assert slot is not None
    if slot.available:
        return slot, []
    found = await check_availability(
        engine, restaurant_id, party_size, day=start.astimezone(policy.tz).date(),
        config=config, now=now, also=start,
    )
    slot = found.slot_at(start)
    assert slot is not None
    if slot.available:
        return slot, []
    return slot, found.nearest(start, limit)
