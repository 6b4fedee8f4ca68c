"""The host's timeline of a day: what it shows and where (pure).

Rows are the restaurant's tables grouped by zone; the horizontal axis is the
time of the day's services on the restaurant's clock; each seated booking is a
bar over its occupied window [start, occupied_until) on each of its tables.

Positions are fractions of elapsed time (instants, not wall-clock readings),
so a day with a daylight-saving change is drawn to scale: its repeated or
skipped hour is one hour wide or absent, and each tick is labelled with the
wall-clock time it reads there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from seatflow.domain.restaurant import ServicePeriod

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class TimelineTable:
    code: str
    zone: str
    seats: int
    min_party: int
    max_party: int | None
    active: bool


@dataclass(frozen=True)
class TimelineZone:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class TimelineBooking:
    """A booking of the day as the floor staff see it: never the guest's name
    or address, only the initial of the name."""

    booking_id: str
    party_size: int
    start: datetime
    end: datetime
    occupied_until: datetime
    state: str
    strategy: str | None
    times_moved: int
    last_reason: str | None
    guest_initial: str | None
    tables: tuple[str, ...] = ()
    attempts: int = 0  # attempts that did not confirm
    since: datetime | None = None  # when it entered its current state

    @property
    def short_id(self) -> str:
        return short_id(self.booking_id)


@dataclass(frozen=True)
class TimelineFloor:
    """What storage reads for one local day: the floor and its bookings."""

    day: date
    name: str
    timezone: str
    services: tuple[ServicePeriod, ...]
    zones: tuple[TimelineZone, ...]
    tables: tuple[TimelineTable, ...]
    bookings: tuple[TimelineBooking, ...] = field(default=())


@dataclass(frozen=True)
class Tick:
    at: datetime
    label: str  # the wall-clock time there, HH:MM
    offset: float  # percent of the window's width


def short_id(booking_id: str) -> str:
    return booking_id[:8]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar day as instants: [its midnight, the next midnight)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def service_span(day: date, tz: ZoneInfo,
                 services: Sequence[ServicePeriod]) -> tuple[datetime, datetime] | None:
    """From the first service's opening to the last one's close on `day`
    (a service that closes at or before it opens closes the next day)."""
    spans = []
    for service in services:
        opens = datetime.combine(day, service.start, tzinfo=tz)
        close_day = day if service.end > service.start else day + timedelta(days=1)
        closes = datetime.combine(close_day, service.end, tzinfo=tz)
        spans.append((opens.astimezone(UTC), closes.astimezone(UTC)))
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def floor_hour(moment: datetime, tz: ZoneInfo) -> datetime:
    """The last whole hour on the local clock at or before `moment`."""
    local = moment.astimezone(tz)
    return (local - timedelta(minutes=local.minute, seconds=local.second,
                              microseconds=local.microsecond)).astimezone(UTC)


def ceil_hour(moment: datetime, tz: ZoneInfo) -> datetime:
    """The first whole hour on the local clock at or after `moment`."""
    floored = floor_hour(moment, tz)
    return floored if floored == moment else floored + HOUR


def timeline_window(day: date, tz: ZoneInfo, services: Sequence[ServicePeriod],
                    spans: Iterable[tuple[datetime, datetime]] = ()) -> tuple[datetime, datetime]:
    """The axis of `day`: its services (the whole day without any), widened to
    every span drawn on it (a booking outside the services, a late booking
    running past midnight), on whole local hours."""
    lo, hi = service_span(day, tz, services) or day_bounds(day, tz)
    for start, end in spans:
        lo, hi = min(lo, start), max(hi, end)
    lo, hi = floor_hour(lo, tz), ceil_hour(hi, tz)
    if hi <= lo:
        hi = lo + HOUR
    return lo, hi


def offset(moment: datetime, lo: datetime, hi: datetime) -> float | None:
    """Where `moment` falls on the axis [lo, hi), in percent; None outside it."""
    if not lo <= moment <= hi:
        return None
    return round((moment - lo) / (hi - lo) * 100, 4)


def span_position(start: datetime, end: datetime, lo: datetime,
                  hi: datetime) -> tuple[float, float] | None:
    """(left, width) in percent of a span on the axis [lo, hi), clipped to it;
    None when the span does not overlap the axis."""
    left, right = max(start, lo), min(end, hi)
    if right <= left:
        return None
    total = hi - lo
    return round((left - lo) / total * 100, 4), round((right - left) / total * 100, 4)


def hour_ticks(lo: datetime, hi: datetime, tz: ZoneInfo) -> list[Tick]:
    """A tick every hour of elapsed time from `lo` to `hi`, each labelled with
    the local time it reads (a repeated hour shows twice, a skipped one not)."""
    ticks = []
    at = lo
    while at <= hi:
        ticks.append(Tick(at, at.astimezone(tz).strftime("%H:%M"), offset(at, lo, hi) or 0.0))
        at += HOUR
    return ticks
