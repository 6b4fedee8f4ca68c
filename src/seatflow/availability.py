"""Availability: which start times have a valid table plan right now.

For a restaurant, a party size and a day (or a window), every start time of
its services, `slot_minutes` apart from each service's opening, is checked
with the same rules as intake (`booking_window`: service hours, turn time,
buffer, not in the past) and the same plan rules and re-packing rules as the
assignment pipeline (`seatflow.engine`), over one read-only snapshot of the
restaurant's tables and allocations. Nothing is written. A start time is
offered only when it is proven seatable: a free plan, or a re-assignment of
bookings that have not started, checked from scratch; within a time budget,
a time not decided is not offered and says so (`evaluate_counted`).

`evaluate` is pure (tests and `bench/availability.py` call it with a snapshot
they build); `check_availability` reads the snapshot from PostgreSQL in one
REPEATABLE READ, READ ONLY transaction and calls it.
"""

from __future__ import annotations

import gc
import time as time_module
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    Move,
    RestaurantSnapshot,
)
from seatflow.domain.restaurant import (
    BookingWindow,
    InvalidBooking,
    RestaurantPolicy,
    booking_window,
)
from seatflow.engine.combinations import enumerate_plans
from seatflow.engine.exact import (
    ExactOutcome,
    FeasibilityRepacker,
    HeldBooking,
)
from seatflow.engine.floor import Floor, overlaps
from seatflow.engine.repack import bounded_repack, movable_bookings
from seatflow.engine.search import no_plan_reason, plan_config
from seatflow.engine.validation import plan_problem
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
    # not available because the time budget ran out before this time was decided
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


# The wall-clock budget of one evaluation's re-packing stage (the start times
# without a free plan). A start time not decided when it runs out is reported
# as not available, with UNDECIDED as its reason: never offered unproven.
BUDGET_MS = 20.0
# The budget of a whole `check_availability` call (snapshot read included): the
# re-packing stage gets what is left of it, at most BUDGET_MS.
CALL_BUDGET_MS = 35.0
UNDECIDED = (
    "re-seating bookings that have not started was not decided within the availability "
    "search's budget"
)
# The bounded re-packing search's step limit in the first, cheap round.
QUICK_STEPS = 100

# How each start time was decided (Evaluation.counts keys).
FREE = "free"  # a valid plan among the free tables
REPACK = "repack"  # a re-assignment found for this start time (verified)
REUSED = "reused"  # another start time's re-assignment, verified for this one
NONE = "none"  # proven not seatable (no table fits, nothing may move, or the exact proof)
SEARCHED = "undecided_searched"  # searched, nothing found, no proof: not offered
NOT_REACHED = "undecided_not_reached"  # the budget ran out before any search: not offered
INVALID = "invalid"  # the intake rules refuse the time (past, outside service)


@dataclass(frozen=True)
class Witness:
    """A re-assignment that seats the probe: its tables, and the moves that free them."""

    tables: tuple[str, ...]
    moves: tuple[Move, ...]


@dataclass(frozen=True)
class Evaluation:
    slots: list[Slot]
    counts: dict[str, int]  # start times per way of deciding (FREE, REPACK, ...)


def evaluate(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    *,
    now: datetime,
    budget_ms: float | None = BUDGET_MS,
) -> list[Slot]:
    """Pure: whether each start time can be seated in `snapshot`, by the intake
    rules and the pipeline's plan rules; see `evaluate_counted`."""
    return evaluate_counted(
        snapshot, policy, party_size, starts, config, now=now, budget_ms=budget_ms
    ).slots


def evaluate_counted(
    snapshot: RestaurantSnapshot,
    policy: RestaurantPolicy,
    party_size: int,
    starts: Sequence[datetime],
    config: EngineConfig,
    *,
    now: datetime,
    budget_ms: float | None = BUDGET_MS,
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
    3. otherwise a re-assignment is looked for (`_decide`): neighbouring
       start times' re-assignments re-checked for this one, the engine's
       bounded re-packing search (at most `max_moves` moves, QUICK_STEPS then
       `max_repack_steps` steps), then the exact search in feasibility-only
       mode (`FeasibilityRepacker`: a re-assignment, or a proof of none).

    A time is offered only with a free plan or a re-assignment that
    `witness_problem` has checked from scratch against the snapshot and the
    plan rules (tables valid and free for every seated booking, only movable
    bookings moved, the moves applied as one set). A time where nothing was
    found, or that the budget (`budget_ms` of wall clock for step 3, None: no
    limit) did not reach, is not offered: `undecided`, and its reason says so.
    The cyclic garbage collector is paused meanwhile (`_collector_paused`).
    """
    with _collector_paused():
        return _evaluate(snapshot, policy, party_size, starts, config, now, budget_ms)


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
    budget_ms: float | None,
) -> Evaluation:
    floor = Floor(snapshot)
    counts = dict.fromkeys((FREE, REPACK, REUSED, NONE, SEARCHED, NOT_REACHED, INVALID), 0)
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
        if _fits(floor, party_size, free, plan_config(config, request, now)):
            slots.append(_slot(policy, start, window, True))
            counts[FREE] += 1
            continue
        pending.append((len(slots), window, request))
        slots.append(None)
    if pending:
        _decide(floor, policy, party_size, config, now, budget_ms, pending, slots, counts)
    assert all(slot is not None for slot in slots)
    return Evaluation([s for s in slots if s is not None], counts)


def _fits(floor: Floor, party: int, tables: Iterable[str], config: EngineConfig) -> bool:
    return bool(enumerate_plans(floor, party, tables, config).candidates)


def _slot(
    policy: RestaurantPolicy, start: datetime, window: BookingWindow, available: bool,
    reason: str | None = None, *, repack: bool = False, undecided: bool = False,
) -> Slot:
    return Slot(
        start=start.astimezone(policy.tz), end=window.end.astimezone(policy.tz),
        service=window.service, available=available, reason=reason, repack=repack,
        undecided=undecided,
    )


def _decide(
    floor: Floor,
    policy: RestaurantPolicy,
    party: int,
    config: EngineConfig,
    now: datetime,
    budget_ms: float | None,
    pending: list[tuple[int, BookingWindow, BookingRequest]],
    slots: list[Slot | None],
    counts: dict[str, int],
) -> None:
    """Steps 2 and 3 of `evaluate_counted` for the start times without a free plan.

    The budget is spent breadth first, cheapest first, so that no start time
    waits behind an expensive one (and those nearest an available time go
    first in each round): a round of the bounded search with
    QUICK_STEPS steps over every open time, a round with the configured
    `max_repack_steps` over those it cut short, then the exact search in its
    feasibility-only mode; before each attempt the re-assignments found so far
    are re-checked for that time."""
    deadline = None if budget_ms is None else time_module.perf_counter() + budget_ms / 1000
    ever = _fits(floor, party, floor.usable, config)
    if not ever or not config.repack:
        for index, window, request in pending:
            reason = no_plan_reason(floor, request, plan_config(config, request, now))
            slots[index] = _slot(policy, request.start, window, False, reason)
            counts[NONE] += 1
        return
    # Movability does not depend on the window except by overlap: find the
    # movable bookings once for a window spanning every pending start time.
    span = BookingRequest(
        PROBE_BOOKING_ID, party, min(r.start for _, _, r in pending),
        max(r.end for _, _, r in pending),
    )
    evening = movable_bookings(floor, span, now, config)
    opened: list[_Open] = []
    for index, window, request in pending:
        movable = {
            b: held for b, held in evening.items()
            if overlaps(held.start, held.end, request.start, request.end)
        }
        if movable:
            opened.append(_Open(index, window, request, movable))
        else:
            slots[index] = _slot(policy, request.start, window, False, _taken(request))
            counts[NONE] += 1
    found: list[tuple[datetime, Witness]] = []

    def out_of_time() -> bool:
        return deadline is not None and time_module.perf_counter() > deadline

    def seat(item: _Open, witness: Witness, how: str) -> None:
        counts[how] += 1
        found.append((item.request.start, witness))
        slots[item.index] = _slot(policy, item.request.start, item.window, True, repack=True)
        item.done = True

    quick = replace(config, max_repack_steps=min(QUICK_STEPS, config.max_repack_steps))
    rounds = [quick] if quick == config else [quick, config]
    for round_config in rounds:
        for item in _nearest_first(opened, slots):
            if item.done or not item.cut or out_of_time():
                continue
            witness = _reuse(floor, item.request, config, item.movable, found)
            if witness is not None:
                seat(item, witness, REUSED)
                continue
            repacked = bounded_repack(floor, item.request, round_config, item.movable)
            item.searched, item.cut = True, repacked.truncated
            if repacked.plan is not None:
                candidate = Witness(repacked.plan.tables, repacked.moves)
                if witness_problem(floor, item.request, config, item.movable, candidate) is None:
                    seat(item, candidate, REPACK)
    # The exact search decides what the bounded one could not, yes or a proof of
    # no, within what is left of the budget (and its own per-search budgets).
    for item in _nearest_first(opened, slots):
        if item.done:
            continue
        witness = _reuse(floor, item.request, config, item.movable, found)
        if witness is not None:
            seat(item, witness, REUSED)
            continue
        outcome = None if out_of_time() else _feasible(
            floor, item.request, config, item.movable, deadline
        )
        if outcome is None:
            continue
        item.searched = True
        if outcome.exhausted:
            continue
        if outcome.candidate is None:  # a proof: no re-assignment exists
            counts[NONE] += 1
            slots[item.index] = _slot(
                policy, item.request.start, item.window, False, _taken(item.request)
            )
            item.done = True
            continue
        candidate = Witness(outcome.candidate.tables, outcome.moves)
        if witness_problem(floor, item.request, config, item.movable, candidate) is None:
            seat(item, candidate, REPACK)
    for item in opened:
        if item.done:
            continue
        counts[SEARCHED if item.searched else NOT_REACHED] += 1
        slots[item.index] = _slot(
            policy, item.request.start, item.window, False,
            f"{_taken(item.request)}; {UNDECIDED}", undecided=True,
        )


def _nearest_first(opened: list[_Open], slots: list[Slot | None]) -> list[_Open]:
    """The open start times, those nearest an available one first (re-packing
    succeeds most often at the edge of a full stretch, and what it finds there
    serves the next time in by re-checking), then in time order."""
    anchors = [slot.start for slot in slots if slot is not None and slot.available]

    def distance(item: _Open) -> float:
        start = item.request.start
        return min((abs((a - start).total_seconds()) for a in anchors), default=0.0)

    return sorted(opened, key=lambda item: (distance(item), item.request.start))


@dataclass
class _Open:
    """A start time without a free plan, still being decided."""

    index: int
    window: BookingWindow
    request: BookingRequest
    movable: dict[str, HeldBooking]
    done: bool = False
    searched: bool = False  # a re-packing search ran for it
    cut: bool = True  # the last bounded search stopped at its step limit (or none ran)


def _feasible(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    deadline: float | None,
) -> ExactOutcome | None:
    """The exact search's feasibility-only answer within the pipeline's own
    per-search budgets and what is left of the evaluation's (None: nothing left)."""
    budget_ms = config.repack_time_budget_ms
    if deadline is not None:
        left_ms = (deadline - time_module.perf_counter()) * 1000
        if left_ms <= 0:
            return None
        budget_ms = left_ms if budget_ms is None else min(budget_ms, left_ms)
    bounded = replace(config, repack_time_budget_ms=budget_ms)
    return FeasibilityRepacker(floor, request, bounded, movable).run()


MAX_REUSE = 4  # neighbouring re-assignments re-checked per start time


def _taken(request: BookingRequest) -> str:
    return f"all fitting tables are taken {request.start:%H:%M}-{request.end:%H:%M}"


def _reuse(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    found: list[tuple[datetime, Witness]],
) -> Witness | None:
    """The first of the MAX_REUSE re-assignments found nearest in time that is
    valid for `request` too."""
    nearest = sorted(found, key=lambda f: (abs((f[0] - request.start).total_seconds()), f[0]))
    for _, witness in nearest[:MAX_REUSE]:
        if witness_problem(floor, request, config, movable, witness) is None:
            return witness
    return None


def witness_problem(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    witness: Witness,
) -> str | None:
    """None when `witness` seats `request`, checked from scratch: the request's
    tables and every moved booking's new tables are a valid plan (the plan
    rules `validate_plan` applies) on tables no booking that stays holds in its
    window; only bookings re-packing may move for `request` move, each from
    the tables it holds, each into a zone it may use; no two seated bookings
    whose windows overlap share a table (the moves apply as one set, so a
    swap is as valid as a chain)."""
    moved = {m.booking_id for m in witness.moves}
    if len(moved) != len(witness.moves):
        return "a booking is moved twice"
    cap = config.repack_max_moves
    if cap is not None and len(moved) > cap:
        return f"{len(moved)} bookings moved, at most {cap} allowed"
    seated: list[tuple[str, datetime, datetime, tuple[str, ...]]] = []
    problem = plan_problem(floor, request, witness.tables, config, ignore_bookings=tuple(moved))
    if problem is not None:
        return problem
    seated.append((request.booking_id, request.start, request.end, tuple(witness.tables)))
    applied: list[tuple[HeldBooking, tuple[str, ...]]] = []
    for move in witness.moves:
        held = movable.get(move.booking_id)
        if held is None:
            return f"booking {move.booking_id} may not move"
        if tuple(sorted(move.from_tables)) != held.tables:
            return f"booking {move.booking_id} does not hold {', '.join(move.from_tables)}"
        moved_request = BookingRequest(move.booking_id, held.party, held.start, held.end)
        problem = plan_problem(
            floor, moved_request, move.to_tables, config, ignore_bookings=tuple(moved)
        )
        if problem is not None:
            return problem
        zones = {floor.tables[t].zone for t in move.to_tables}
        allowed = None if held.zone_preference is None else {held.zone, held.zone_preference}
        if allowed is not None and not zones <= allowed:
            return f"booking {move.booking_id} may not move to zone {', '.join(sorted(zones))}"
        seated.append((move.booking_id, held.start, held.end, tuple(move.to_tables)))
        applied.append((held, tuple(move.to_tables)))
    for i, (a, a_start, a_end, a_tables) in enumerate(seated):
        for b, b_start, b_end, b_tables in seated[i + 1:]:
            shared = set(a_tables) & set(b_tables)
            if shared and overlaps(a_start, a_end, b_start, b_end):
                return f"{a} and {b} both get {', '.join(sorted(shared))}"
    return None


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
    began = time_module.perf_counter()
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
    # The re-packing budget is what is left of the whole call's: a slow snapshot
    # read (a busy database or machine) leaves less, never more than BUDGET_MS.
    spent_ms = (time_module.perf_counter() - began) * 1000
    budget_ms = max(0.0, min(BUDGET_MS, CALL_BUDGET_MS - spent_ms))
    slots = evaluate(snapshot, policy, party_size, starts, config, now=now, budget_ms=budget_ms)
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
