"""Availability: which start times have a valid table plan in a snapshot.

For a restaurant, a party size and a day (or a window), every start time of
its services, `slot_minutes` apart from each service's opening, is checked
with the same rules as intake (`booking_window`: service hours, turn time,
buffer, not in the past) and the same plan rules and re-packing rules as the
assignment pipeline, over one snapshot of the restaurant's tables and
allocations. A start time is offered only when it is proven seatable: a free
plan, or a re-assignment of bookings that have not started, checked from
scratch; within a step budget (`EngineConfig.availability_repack_steps`, the
same answer on any machine), a time not decided is not offered and says so
(`evaluate_counted`; the re-packing stage is `engine.availability_repack`).

Pure: tests and `bench/availability.py` call `evaluate` with a snapshot they
build; `seatflow.service.availability` reads one from PostgreSQL and calls it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from seatflow.domain.planning import BookingRequest, EngineConfig, RestaurantSnapshot
from seatflow.domain.restaurant import (
    BookingWindow,
    InvalidBooking,
    RestaurantPolicy,
    booking_window,
)

from .availability_repack import (
    FREE,
    INVALID,
    NONE,
    NOT_DECIDED,
    NOT_REACHED,
    OFFERED,
    REPACK,
    REUSED,
    SAFETY_STOP,
    SEARCHED,
    decide_unseated,
    fits,
)
from .floor import Floor, floor_clock
from .search import plan_config

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
    # not available because the step budget (or, on an overloaded machine, the
    # wall-clock safety stop) ran out before this time was decided
    undecided: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "service": self.service,
            "available": self.available,
            "reason": self.reason,
            "repack": self.repack,
            "undecided": self.undecided,
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
    # the re-packing stage's wall-clock safety stop fired: this answer may leave
    # undecided what a less loaded machine decides (never set when steps decided)
    safety_stop: bool = False

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
            "safety_stop": self.safety_stop,
        }


def nearest_times(times: Iterable[datetime], wanted: datetime, limit: int = 3) -> list[datetime]:
    """The `limit` times nearest `wanted`, nearest first (earlier first on a
    tie): a host app offers them in that order."""
    ranked = sorted(times, key=lambda t: (abs((t - wanted).total_seconds()), t))
    return ranked[:limit]


def day_window(policy: RestaurantPolicy, day: date) -> tuple[datetime, datetime]:
    """The local calendar day [00:00, next 00:00) in the restaurant's time zone."""
    tz = policy.tz
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def asked_window(
    policy: RestaurantPolicy,
    day: date | None,
    window: tuple[datetime, datetime] | None,
) -> tuple[datetime, datetime]:
    """The local day, or the window (local where it has no offset), asked
    about: exactly one of them. Raises InvalidBooking for neither or both, a
    window that ends before it starts, or one longer than MAX_WINDOW."""
    if (day is None) == (window is None):
        raise InvalidBooking("bad_window", "give either a date or a window (from, to)")
    if day is not None:
        return day_window(policy, day)
    assert window is not None
    lo, hi = window
    if lo.tzinfo is None:
        lo = lo.replace(tzinfo=policy.tz)
    if hi.tzinfo is None:
        hi = hi.replace(tzinfo=policy.tz)
    if hi <= lo:
        raise InvalidBooking("bad_window", "the window ends before it starts")
    if hi - lo > MAX_WINDOW:
        raise InvalidBooking("bad_window", f"the window is longer than {MAX_WINDOW.days} days")
    return lo, hi


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


def snapshot_span(
    policy: RestaurantPolicy, starts: Sequence[datetime]
) -> tuple[datetime, datetime] | None:
    """The window a snapshot must cover to evaluate `starts` (sorted): from the
    first to the last one's longest turn time plus buffer; None without starts."""
    if not starts:
        return None
    longest = max((b.minutes for s in policy.services for b in s.turn_times), default=0)
    return starts[0], starts[-1] + timedelta(minutes=longest + policy.buffer_minutes)


def validate_party(policy: RestaurantPolicy, party_size: int) -> None:
    if party_size < 1:
        raise InvalidBooking("party_not_positive", f"party size must be at least 1, got {party_size}")
    limit = policy.total_capacity or MAX_PARTY
    if party_size > limit:
        raise InvalidBooking(
            "party_exceeds_capacity",
            f"party of {party_size} exceeds {policy.id}'s total capacity of {limit}",
        )


@dataclass(frozen=True)
class Evaluation:
    slots: list[Slot]
    counts: dict[str, int]  # start times per way of deciding (FREE, REPACK, ...)
    repack_steps: int = 0  # steps the re-packing stage spent
    safety_stop: bool = False  # its wall-clock safety stop fired (see `Availability`)


def evaluate(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    *,
    now: datetime,
) -> list[Slot]:
    """Pure: whether each start time can be seated in `snapshot`, by the intake
    rules and the pipeline's plan rules; see `evaluate_counted`."""
    return evaluate_counted(snapshot, policy, party_size, starts, config, now=now).slots


def evaluate_counted(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    *,
    now: datetime,
) -> Evaluation:
    """Pure: whether each start time can be seated, and how that was decided.

    Availability needs a yes or no per start time, not the fewest moves (the
    pipeline computes its moves again at booking time), so it does not run the
    pipeline's `search` per start time:

    1. one `Floor` for all start times; a start time with a valid plan among
       its free tables is available (no ranking);
    2. for the others, the bookings re-packing may move are found once for the
       evening and filtered per start time by overlap (the pipeline's
       `movable_bookings`); with none, or a party no table set fits, the time
       is proven not seatable;
    3. otherwise a re-assignment is looked for (`decide_unseated`): neighbouring
       start times' re-assignments re-checked for this one, the engine's
       bounded re-packing search (at most `max_moves` moves, QUICK_STEPS then
       `max_repack_steps` steps), then the exact search in feasibility-only
       mode (`FeasibilityRepacker`: a re-assignment, or a proof of none).

    A time is offered only with a free plan or a re-assignment that
    `witness_problem` has checked from scratch against the snapshot and the
    plan rules (tables valid and free for every seated booking, only movable
    bookings moved, the moves applied as one set). A time where nothing was
    found, or that the step budget of step 3 (`availability_repack_steps`)
    did not reach, is not offered: `undecided`, and its reason says so. Steps
    alone decide: the same snapshot gets the same slots on any machine. Only
    on an overloaded machine does the wall-clock safety stop
    (`repack_safety_stop_ms` for all of step 3) end it early: the times it left
    are counted as SAFETY_STOP and `safety_stop` is set.
    The cyclic garbage collector is paused meanwhile (`_collector_paused`).
    """
    # The search compares every start time and window with the snapshot's
    # allocations: on one tzinfo, datetimes compare by their fields; across two
    # (local start times, allocations read from PostgreSQL in UTC) every
    # comparison asks both for their UTC offset, a quarter of the evaluation's
    # CPU. So the evaluation runs on the allocations' clock, and each slot is
    # given back on the clock of the start time it was asked for.
    clock = floor_clock(snapshot)
    asked = {start.astimezone(clock): start for start in starts} if clock else {}
    with _collector_paused():
        found = _evaluate(snapshot, policy, party_size, list(asked) or starts, config, now)
    if not asked:
        return found
    return replace(found, slots=[
        replace(slot, start=asked[slot.start], end=slot.end.astimezone(asked[slot.start].tzinfo))
        for slot in found.slots])


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one evaluation.

    An evaluation allocates tens of thousands of short-lived objects (table
    sets, masks, candidates), none in reference cycles: reference counting
    frees them all. With the collector on, those allocations triggered ~60
    collections per evaluation, and now and then a full one over the whole
    process (20-25 ms on the benchmark's heap, more in a server's): on the
    sample floor that put CPU P95 at 34-45 ms instead of 21 ms. It is turned
    back on only if it was on (a caller that turned it off keeps it off)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _evaluate(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    now: datetime,
) -> Evaluation:
    floor = Floor(snapshot)
    counts = dict.fromkeys(
        (FREE, REPACK, REUSED, NONE, SEARCHED, NOT_REACHED, SAFETY_STOP, INVALID), 0
    )
    slots: list[Slot | None] = []
    pending: list[tuple[int, BookingWindow, BookingRequest]] = []
    for start in starts:
        try:
            window: BookingWindow = booking_window(policy, party_size, start, now=now)
        except InvalidBooking as exc:
            slots.append(Slot(start, start, "", False, reason=exc.message))
            counts[INVALID] += 1
            continue
        request = BookingRequest(
            booking_id=PROBE_BOOKING_ID, party_size=party_size,
            start=window.start, end=window.occupied_until,
        )
        free = floor.free_tables(request.start, request.end)
        if fits(floor, party_size, free, plan_config(config, request, now)):
            slots.append(_slot(policy, start, window, True))
            counts[FREE] += 1
            continue
        pending.append((len(slots), window, request))
        slots.append(None)
    steps, safety_stop = 0, False
    if pending:
        available = [slot.start for slot in slots if slot is not None and slot.available]
        unseated = decide_unseated(
            floor, party_size, config, now, [request for _, _, request in pending], available,
        )
        steps, safety_stop = unseated.steps, unseated.safety_stop
        for (index, window, request), decision in zip(pending, unseated.decisions, strict=True):
            counts[decision.how] += 1
            slots[index] = _slot(
                policy, request.start, window, decision.how in OFFERED, decision.reason,
                repack=decision.how in OFFERED, undecided=decision.how in NOT_DECIDED,
            )
    assert all(slot is not None for slot in slots)
    return Evaluation([s for s in slots if s is not None], counts, steps, safety_stop)


def _slot(
    policy: RestaurantPolicy, start: datetime, window: BookingWindow, available: bool,
    reason: str | None = None, *, repack: bool = False, undecided: bool = False,
) -> Slot:
    return Slot(
        start=start.astimezone(policy.tz), end=window.end.astimezone(policy.tz),
        service=window.service, available=available, reason=reason, repack=repack,
        undecided=undecided,
    )
