"""Lookahead placement (engine/demand.py, docs/engine.md "Lookahead placement"):
among plans that fit equally well, the one that blocks the least of the demand
still to come; and a group that fits exactly over a single with empty seats."""

from __future__ import annotations

import random
from dataclasses import replace

from engine_floors import at, booking, floor, held, table

from seatflow.domain.planning import (
    Allocation,
    DemandProfile,
    EngineConfig,
    RestaurantSnapshot,
    ScoreWeights,
)
from seatflow.engine import quote_tables, search
from seatflow.engine.demand import DemandView, default_demand
from seatflow.engine.exact_problem import floor_plans
from seatflow.engine.floor import Floor

BLIND = EngineConfig(weights=replace(ScoreWeights(), demand=0.0))  # lookahead disabled
ALONE = EngineConfig(repack=False)


def profile(*rates: tuple[int, int, float]) -> DemandProfile:
    """Expected requests an evening: (minute of the day, party, rate)."""
    return DemandProfile(rates=rates, durations=((2, 120), (4, 120)))


def evening_floor(demand: DemandProfile | None) -> RestaurantSnapshot:
    """Three movable 2-tops: A and B side by side (together they seat 4), C alone."""
    snapshot = floor(table("A", 2), table("B", 2), table("C", 2), edges=(("A", "B"),))
    return replace(snapshot, demand=demand)


def seat(snapshot: RestaurantSnapshot, booking_id: str, tables: tuple[str, ...],
         party: int) -> RestaurantSnapshot:
    extra = tuple(
        Allocation(booking_id, t, at(0), at(120), party, at(0)) for t in tables
    )
    return replace(snapshot, allocations=snapshot.allocations + extra)


def test_a_couple_leaves_the_pair_a_later_party_of_four_needs() -> None:
    """Parties of 4 are expected at 19:00: a couple asked first takes C, the
    2-top that belongs to no group, and the 4 asked later gets A+B. Legacy (and
    the engine with lookahead disabled) seat the couple on A, the first id,
    which breaks the only pair: the 4 is refused."""
    snapshot = evening_floor(profile((19 * 60, 2, 1.0), (19 * 60, 4, 1.0)))
    couple, four = booking(2, booking_id="couple"), booking(4, booking_id="four")

    placed = search(snapshot, couple, ALONE, now=at(-600)).plans[0]
    assert placed.tables == ("C",)
    assert placed.breakdown["demand"] > 0
    assert quote_tables(snapshot, couple)[0].tables == ("A",)
    blind = replace(BLIND, repack=False)
    assert search(snapshot, couple, blind, now=at(-600)).plans[0].tables == ("A",)

    after = seat(snapshot, "couple", placed.tables, 2)
    assert search(after, four, ALONE, now=at(-300)).plans[0].tables == ("A", "B")
    after_legacy = seat(snapshot, "couple", ("A",), 2)
    assert quote_tables(after_legacy, four) == []
    assert search(after_legacy, four, blind, now=at(-300)).plans == ()


def test_the_profile_decides_when_a_group_is_worth_keeping() -> None:
    """With at most one empty seat (so A+B is no plan for a couple): no party
    of 4 expected, or only at 22:00 (after the couple's window), leaves nothing
    to keep A+B for, and the tie breaks on table ids; 4s expected at 19:00
    keep it. Without any profile the default one (about 13% parties of 4
    around the peak) keeps it too."""
    snug = replace(ALONE, max_overage=1)
    couple = booking(2, booking_id="couple")
    for demand in (profile((19 * 60, 2, 3.0)), profile((19 * 60, 2, 1.0), (22 * 60, 4, 5.0))):
        chosen = search(evening_floor(demand), couple, snug, now=at(-600)).plans[0]
        assert chosen.tables == ("A",)
    fours = evening_floor(profile((19 * 60, 2, 1.0), (19 * 60, 4, 1.0)))
    assert search(fours, couple, snug, now=at(-600)).plans[0].tables == ("C",)
    assert search(evening_floor(None), couple, snug, now=at(-600)).plans[0].tables == ("C",)


def test_a_snug_fit_in_time_blocks_less_demand() -> None:
    """Two 4-tops, one already taken until 19:00: a 19:00 party of 3 takes that
    one, leaving the empty table's whole evening for the demand to come."""
    snapshot = floor(table("A4", 4), table("B4", 4))
    early = Allocation("early", "B4", at(-120), at(0), 2, at(-120))
    snapshot = replace(snapshot, allocations=(early,),
                       demand=profile(*((m, 2, 1.0) for m in range(17 * 60, 22 * 60, 15))))
    request = booking(3)
    chosen = search(snapshot, request, ALONE, now=at(-600)).plans
    assert chosen[0].tables == ("B4",)
    assert chosen[0].breakdown["demand"] < chosen[1].breakdown["demand"]
    assert search(snapshot, request, replace(BLIND, repack=False)).plans[0].tables == ("A4",)


def test_an_exact_group_beats_a_single_with_two_empty_seats() -> None:
    """A party of 4: two adjacent 2-tops (no empty seat) rather than the fixed
    6-top larger parties need; a single with one empty seat still beats a group
    (a party of 3 takes the 4-top, not three bar stools)."""
    snapshot = floor(
        table("A", 2), table("B", 2), table("K6", 6, fixed=True), edges=(("A", "B"),)
    )
    assert search(snapshot, booking(4)).plans[0].tables == ("A", "B")
    stools = floor(
        table("S1", 1), table("S2", 1), table("S3", 1), table("T4", 4),
        edges=(("S1", "S2"), ("S2", "S3")),
    )
    assert search(stools, booking(3)).plans[0].tables == ("T4",)


def test_the_default_profile_scales_with_the_floor_and_peaks_in_the_evening() -> None:
    small = default_demand(Floor(floor(table("A", 2), table("B", 2))))
    large = default_demand(Floor(floor(*(table(f"T{i}", 4) for i in range(10)))))
    total = lambda p: sum(rate for _, _, rate in p.rates)
    assert abs(total(large) - 10 * total(small)) < 0.01  # 40 seats against 4
    by_minute: dict[int, float] = {}
    for minute, _, rate in small.rates:
        by_minute[minute] = by_minute.get(minute, 0.0) + rate
    assert max(by_minute, key=lambda m: by_minute[m]) // 60 == 19
    assert dict(small.durations)[2] < dict(small.durations)[8]


def reference_share(view: DemandView, table_id: str) -> float:
    """A table's share as the lookahead first summed it: opportunity by
    opportunity, each free plan touching the tables of interest adding its
    part to each of its tables."""
    share: dict[str, float] = {}
    for party, mask, weight in view.opportunities:
        busy = 0
        for busy_id, slots in view.busy_in.items():
            if slots & mask:
                busy |= view.floor.bit.get(busy_id, 0)
        free = [o for o in floor_plans(view.floor, party, view._zones, view.config)
                if not o.mask & busy]
        if not free:
            continue
        each = weight / len(free)
        for option in free:
            if option.mask & view.interest:
                for t in option.candidate.tables:
                    share[t] = share.get(t, 0.0) + each
    return share.get(table_id, 0.0)


def test_the_demand_view_sums_what_summing_plan_by_plan_gives_to_the_last_bit() -> None:
    """The view counts free plans as bitsets and sums a table's shares only
    when asked (issue 27): on random evenings every table's cost is the very
    float the plan-by-plan sum gives, inside the tables of interest or not."""
    tables = (*(table(f"R{i}", 2) for i in range(6)), table("F1", 4), table("F2", 4),
              table("G", 6, fixed=True), table("T1", 2, zone="terrace"),
              table("T2", 2, zone="terrace"))
    edges = (*((f"R{i}", f"R{i + 1}") for i in range(5)), ("F1", "F2"), ("T1", "T2"))
    demand = DemandProfile(
        rates=tuple((19 * 60 + 15 * s, p, round(0.3 + 0.17 * ((s * 7 + p) % 5), 6))
                    for s in range(-4, 8) for p in (1, 2, 3, 4, 6, 8)),
        durations=((1, 90), (2, 105), (3, 120), (4, 120), (6, 135), (8, 150)))
    ids = [t.id for t in tables]
    for seed in range(30):
        rng = random.Random(seed)
        allocations = tuple(
            held(f"b{i}", rng.choice(ids), rng.randrange(-120, 180, 15), rng.choice((90, 120)),
                 party=rng.choice((1, 2, 3, 4, 6)))
            for i in range(rng.randrange(0, 9)))
        snapshot = replace(floor(*tables, edges=edges, allocations=allocations), demand=demand)
        f = Floor(snapshot)
        request = booking(rng.choice((2, 3, 4)), start=rng.randrange(-60, 120, 15))
        interest = rng.choice((-1, f.mask(rng.sample(ids, 4))))
        view = DemandView(f, request, EngineConfig(), demand, interest)
        for table_id in rng.sample(ids, len(ids)):
            assert view.cost((table_id,)) == round(reference_share(view, table_id), 6)
            assert view._share_of(table_id) == reference_share(view, table_id)
