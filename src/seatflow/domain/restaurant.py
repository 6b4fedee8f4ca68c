"""Restaurant policy: services, turn times, buffer, and the booking window.

Pure functions: the caller passes `now`; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


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
    periods = ", ".join(f"{s.name} {s.start:%H:%M}-{s.end:%H:%M}" for s in policy.services)
    raise InvalidBooking(
        "outside_service",
        f"{local:%Y-%m-%d %H:%M} ({policy.timezone}) is outside every service of {policy.id}"
        + (f" ({periods})" if periods else " (it has no services)"),
    )
