"""Availability's re-packing stage decides by a step budget, not the clock.

The same snapshot gets the same slots on a machine a thousand times slower
(a clock that jumps 50 ms at every read), as long as the wall-clock safety
stop is not what ends the stage; when it is, the result says so and the
times it left are counted apart. A tiny step budget, not the clock, is what
leaves times undecided.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import count

import pytest

from seatflow.domain.planning import Allocation, BookingRequest, EngineConfig, RestaurantSnapshot
from seatflow.domain.restaurant import RestaurantPolicy, ServicePeriod, TurnBand, booking_window
from seatflow.engine import availability_repack, exact_problem, search
from seatflow.engine.availability import Evaluation, candidate_starts, day_window, evaluate_counted
from seatflow.engine.availability_repack import (
    NONE,
    NOT_REACHED,
    REPACK,
    REUSED,
    SAFETY_STOP,
    SEARCHED,
    STOPPED,
    UNDECIDED,
)
from tests.pure.engine.engine_floors import table

DAY = date(2030, 3, 5)
NOW = datetime(2030, 3, 4, tzinfo=UTC)
POLICY = RestaurantPolicy(
    id="steps", name="Steps", timezone="UTC", buffer_minutes=5, total_capacity=40,
    services=(ServicePeriod("dinner", time(17), time(23),
                            (TurnBand(2, 90), TurnBand(4, 105), TurnBand(None, 120))),),
)
# No safety stop: steps alone end the stage.
STEPS_ONLY = EngineConfig(repack_safety_stop_ms=None)


def full_evening() -> RestaurantSnapshot:
    """Eight 2-tops and four 4-tops. Couples hold the 4-tops in turns all
    evening (a party of four needs one of them moved to a 2-top), and seeded
    couples and threes fill the rest the way the pipeline fills a floor (each
    on the best free plan, no re-packing)."""
    tables = tuple([table(f"T{i}", 2) for i in range(1, 9)]
                   + [table(f"F{i}", 4) for i in range(1, 5)])
    snapshot = RestaurantSnapshot("steps", tables, ())
    allocations: list[Allocation] = []
    for k in range(4):
        for j, hour in enumerate((17, 19, 21)):
            start = datetime.combine(DAY, time(hour, 15 * k), tzinfo=UTC)
            allocations.append(Allocation(f"c{k}{j}", f"F{k + 1}", start,
                                          start + timedelta(minutes=95), 2, start))
    rng = random.Random(1)
    lo, hi = day_window(POLICY, DAY)
    starts = [s for s in candidate_starts(POLICY, lo, hi) if s.hour < 22]
    for n in range(400):
        if len(allocations) >= 26:
            break
        party = rng.choice([2, 2, 2, 3])
        window = booking_window(POLICY, party, rng.choice(starts), now=NOW)
        request = BookingRequest(f"b{n}", party, window.start, window.occupied_until)
        current = replace(snapshot, allocations=tuple(allocations))
        found = search(current, request, replace(STEPS_ONLY, repack=False), now=NOW)
        if found.found:
            allocations += [Allocation(request.booking_id, t, request.start, request.end, party,
                                       request.start) for t in found.plans[0].tables]
    return replace(snapshot, allocations=tuple(allocations))


def evening(config: EngineConfig, party: int = 4) -> Evaluation:
    lo, hi = day_window(POLICY, DAY)
    return evaluate_counted(full_evening(), POLICY, party, candidate_starts(POLICY, lo, hi),
                            config, now=NOW)


def answers(found: Evaluation) -> list[tuple[datetime, bool, bool, bool, str | None]]:
    return [(s.start, s.available, s.repack, s.undecided, s.reason) for s in found.slots]


@pytest.fixture
def slow_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The engine's wall clock, 50 ms later at every read: a machine so loaded
    that any wall-clock budget would run out at once."""
    ticks = count()

    def slow() -> float:
        return next(ticks) * 0.05

    monkeypatch.setattr(exact_problem, "clock", slow)
    monkeypatch.setattr(availability_repack, "clock", slow)
    yield


def test_the_evening_needs_re_packing_and_the_default_budget_decides_some_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fixture is what the other tests need: times only re-packing can
    seat, and more work than a small budget covers."""
    unlimited = evening(replace(STEPS_ONLY, availability_repack_steps=10**9))
    assert unlimited.counts[REPACK] >= 2 and unlimited.counts[REUSED] >= 2
    assert unlimited.counts[NONE] >= 1  # proofs of no from the exact search
    assert unlimited.counts[SEARCHED] == unlimited.counts[NOT_REACHED] == 0
    assert unlimited.repack_steps > 500
    # the default steps decide (a frozen clock: on a busy machine the 250 ms
    # safety stop may fire, and says so; the next tests cover that)
    monkeypatch.setattr(exact_problem, "clock", lambda: 0.0)
    monkeypatch.setattr(availability_repack, "clock", lambda: 0.0)
    default = evening(EngineConfig())
    assert not default.safety_stop and default.counts[SAFETY_STOP] == 0
    assert default.repack_steps <= EngineConfig().availability_repack_steps


def test_a_slow_clock_changes_nothing_when_steps_decide(slow_clock: None) -> None:
    quick = EngineConfig(repack_safety_stop_ms=None, availability_repack_steps=300)
    for config in (quick, replace(quick, availability_repack_steps=10**9), STEPS_ONLY):
        with pytest.MonkeyPatch.context() as real:
            real.setattr(exact_problem, "clock", lambda: 0.0)
            real.setattr(availability_repack, "clock", lambda: 0.0)
            unhurried = evening(config)
        slowed = evening(config)
        assert answers(slowed) == answers(unhurried)
        assert slowed.counts == unhurried.counts
        assert slowed.repack_steps == unhurried.repack_steps
        assert not slowed.safety_stop


def test_the_safety_stop_is_counted_and_reported_never_offering_more(slow_clock: None) -> None:
    """With the default safety stop (250 ms of the whole stage) the slow clock
    stops it: the result says so, the times it left are SAFETY_STOP with their
    own reason, and nothing is offered that the steps alone would not offer."""
    stopped = evening(EngineConfig())
    assert stopped.safety_stop and stopped.counts[SAFETY_STOP] >= 1
    with pytest.MonkeyPatch.context() as real:
        real.setattr(exact_problem, "clock", lambda: 0.0)
        real.setattr(availability_repack, "clock", lambda: 0.0)
        decided = evening(EngineConfig())
    assert not decided.safety_stop
    for slow, steady in zip(stopped.slots, decided.slots, strict=True):
        assert not slow.available or steady.available
        if slow.undecided and not steady.undecided:
            assert STOPPED in (slow.reason or "")
    assert stopped.repack_steps < decided.repack_steps


def test_a_tiny_step_budget_not_the_clock_leaves_times_undecided(slow_clock: None) -> None:
    """The clock never moves here (a frozen one) and the safety stop is off:
    only the steps run out."""
    none = evening(replace(STEPS_ONLY, availability_repack_steps=0))
    assert none.repack_steps == 0 and not none.safety_stop
    assert none.counts[NOT_REACHED] >= 1 and none.counts[REPACK] == none.counts[REUSED] == 0
    assert all(UNDECIDED in (s.reason or "") for s in none.slots if s.undecided)
    few = evening(replace(STEPS_ONLY, availability_repack_steps=40))
    assert few.counts[SEARCHED] + few.counts[NOT_REACHED] >= 1 and not few.safety_stop
    # a search may overrun by its last step, never by more than one enumeration
    assert 0 < few.repack_steps <= 40
    enough = evening(replace(STEPS_ONLY, availability_repack_steps=10**9))
    assert enough.counts[SEARCHED] == enough.counts[NOT_REACHED] == 0
    assert sum(s.available for s in enough.slots) > sum(s.available for s in none.slots)


def test_start_times_on_another_clock_than_the_floor_get_the_same_slots_on_their_own() -> None:
    """Allocations come from PostgreSQL in UTC, start times in the restaurant's
    zone: the evaluation runs on one clock (a quarter of its CPU went on
    comparing across two) and gives each slot back on the clock it was asked
    on, with the same answers."""
    from zoneinfo import ZoneInfo

    local = ZoneInfo("America/New_York")
    policy = replace(POLICY, timezone="America/New_York")
    lo, hi = day_window(policy, DAY)
    starts = candidate_starts(policy, lo, hi)
    assert all(s.tzinfo is local for s in starts)
    floor = full_evening()
    shifted = replace(floor, allocations=tuple(
        replace(a, start=a.start + timedelta(hours=5), end=a.end + timedelta(hours=5),
                booking_start=a.booking_start + timedelta(hours=5))
        for a in floor.allocations))  # the same evening, five hours later in UTC
    on_local = replace(shifted, allocations=tuple(
        replace(a, start=a.start.astimezone(local), end=a.end.astimezone(local),
                booking_start=a.booking_start.astimezone(local)) for a in shifted.allocations))
    in_utc = evaluate_counted(shifted, policy, 4, starts, STEPS_ONLY, now=NOW)
    in_local = evaluate_counted(on_local, policy, 4, starts, STEPS_ONLY, now=NOW)
    assert in_utc == in_local
    assert [s.start for s in in_utc.slots] == starts
    assert all(s.start.tzinfo is local and s.end.tzinfo is local for s in in_utc.slots)
    assert any(s.available for s in in_utc.slots) and any(not s.available for s in in_utc.slots)
