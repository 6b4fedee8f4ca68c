"""Restaurant policy: services, turn times, buffer, the booking window, and the
booking horizon (how far ahead, and back, a date may be asked about).

Pure functions: the caller passes `now`; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Bookings and availability reach at most this many days ahead (the
# SEATFLOW_BOOKING_HORIZON_DAYS setting), and availability at most LOOKBACK
# back: every date is refused before any arithmetic on it could leave the
# years 1-9999.
DEFAULT_HORIZON_DAYS = 365
LOOKBACK = timedelta(days=2)


class InvalidBooking(ValueError):
    """A booking that can never be seated as asked. `code` is stable for scripts."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TurnBand:
    max_party: int | None  # None: any larger party
    minutes: int


@dataclass(frozen=True)
class ServicePeriod:
    name: str
    start: time
    end: time
    turn_times: tuple[TurnBand, ...]

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # a service past midnight

    def turn_minutes(self, party_size: int) -> int:
        for band in self.turn_times:
            if band.max_party is None or band.max_party >= party_size:
                return band.minutes
        raise InvalidBooking(
            "no_turn_time", f"service {self.name} has no turn time for a party of {party_size}"
        )


@dataclass(frozen=True)
class RestaurantPolicy:
    id: str
    name: str
    timezone: str
    buffer_minutes: int
    total_capacity: int
    services: tuple[ServicePeriod, ...]
    slot_minutes: int = 15  # the step between start times offered by availability

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class BookingWindow:
    start: datetime
    end: datetime  # start + turn time
    occupied_until: datetime  # end + buffer; the occupied window is [start, occupied_until)
    service: str


def parse_start(text: str, timezone: str) -> datetime:
    """ISO 8601; without an offset it is local time in the restaurant's timezone."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidBooking(
            "bad_start", f"start {text!r} is not an ISO 8601 date-time (e.g. 2026-12-01T19:30)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value


def check_horizon(start: datetime, now: datetime, horizon_days: int) -> None:
    """Raise InvalidBooking `beyond_horizon` for a start more than
    `horizon_days` after `now`, `start_in_past` for one more than LOOKBACK
    before it (`booking_window` refuses any past start; this one only keeps
    year 1 out of the arithmetic that comes before it). A start without an
    offset is read as UTC: a day of slack does not matter at this scale."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if now - start > LOOKBACK:  # exact for any year: no overflow
        raise InvalidBooking("start_in_past", f"start {start.isoformat()} is in the past")
    if start - now > timedelta(days=horizon_days):
        raise InvalidBooking(
            "beyond_horizon",
            f"{start.isoformat(timespec='minutes')} is more than {horizon_days} days ahead "
            f"(bookings open {horizon_days} days in advance)",
        )


def check_span(lo: datetime, hi: datetime, now: datetime, horizon_days: int) -> None:
    """An availability window (both ends aware): not ending more than a day
    past the horizon (`beyond_horizon`), not starting more than LOOKBACK
    before `now` (`in_the_past`)."""
    if hi - now > timedelta(days=horizon_days + 1):
        raise InvalidBooking(
            "beyond_horizon",
            f"{hi.isoformat(timespec='minutes')} is more than {horizon_days} days ahead "
            f"(availability reaches {horizon_days} days in advance)",
        )
    if now - lo > LOOKBACK:
        raise InvalidBooking(
            "in_the_past",
            f"{lo.isoformat(timespec='minutes')} is in the past (availability starts yesterday)",
        )


def check_day(day: date, now: datetime, horizon_days: int) -> None:
    """`check_span` for a local calendar day (whatever the restaurant's zone)."""
    if day > (now + timedelta(days=horizon_days + 1)).date():
        raise InvalidBooking(
            "beyond_horizon",
            f"{day} is more than {horizon_days} days ahead "
            f"(availability reaches {horizon_days} days in advance)",
        )
    if day < (now - LOOKBACK).date():
        raise InvalidBooking("in_the_past", f"{day} is in the past (availability starts yesterday)")


def booking_window(
    policy: RestaurantPolicy, party_size: int, start: datetime, *, now: datetime | None = None
) -> BookingWindow:
    """Validate a booking against the restaurant and compute its windows.

    Raises InvalidBooking with a reason a person can act on.
    """
    if party_size <= 0:
        raise InvalidBooking("party_not_positive", f"party size must be at least 1, got {party_size}")
    if policy.total_capacity and party_size > policy.total_capacity:
        raise InvalidBooking(
            "party_exceeds_capacity",
            f"party of {party_size} exceeds {policy.id}'s total capacity of {policy.total_capacity}",
        )
    if start.tzinfo is None:
        start = start.replace(tzinfo=policy.tz)
    if now is not None and start < now:
        raise InvalidBooking("start_in_past", f"start {start.isoformat()} is in the past")
    try:
        local = start.astimezone(policy.tz)
        for service in policy.services:
            if service.contains(local.time().replace(tzinfo=None)):
                minutes = service.turn_minutes(party_size)
                end = start + timedelta(minutes=minutes)
                return BookingWindow(
                    start=start,
                    end=end,
                    occupied_until=end + timedelta(minutes=policy.buffer_minutes),
                    service=service.name,
                )
    except OverflowError:  # a caller that skipped check_horizon: still no traceback
        raise InvalidBooking(
            "beyond_horizon", f"start {start.isoformat()} is beyond any booking horizon"
        ) from None
    periods = ", ".join(f"{s.name} {s.start:%H:%M}-{s.end:%H:%M}" for s in policy.services)
    raise InvalidBooking(
        "outside_service",
        f"{local:%Y-%m-%d %H:%M} ({policy.timezone}) is outside every service of {policy.id}"
        + (f" ({periods})" if periods else " (it has no services)"),
    )
