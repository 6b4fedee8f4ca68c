"""The one ranking score and the strategy each plan is credited to.

Lower is better. With the weights w_* of `ScoreWeights`:

    score = overage       * w_overage        seats left empty (capacity - party)
          + (tables - 1)  * w_extra_table    every extra table to push together
          + diameter      * w_diameter       longest hop count inside the group
          + fragmentation * w_fragmentation  free combinable neighbours left alone
          + zone_load     * w_zone_load      share of the zone's capacity busy
          + lookahead     * w_lookahead      known bookings this plan would strand
          + scarcity      * w_scarcity       how rare the plan's table sizes are
          + zone_miss     * w_zone_miss      1 outside the preferred zone
          + idle_gap      * w_idle_gap       hours left idle between this booking and
                                             its neighbours on the same tables, in gaps
                                             shorter than this booking (nobody fits)

The strategies are the families of terms: `optimal_fit` is overage and table
count, `adjacency` is diameter and fragmentation (only groups have them),
`load_balancing` is zone load. Lookahead, scarcity and idle gaps act on every
plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from seatflow.domain.planning import BookingRequest, Mobility, Plan, ScoreWeights

from .combinations import Candidate, diameter
from .demand import DemandView
from .floor import Floor

OPTIMAL_FIT = "optimal_fit"
ADJACENCY = "adjacency"
LOAD_BALANCING = "load_balancing"
REPACK = "repack"
LEGACY = "legacy"


@dataclass
class WindowView:
    """What the scorer needs to know about the booking's window, computed once."""

    free: frozenset[str]
    zone_load: dict[str, float]
    # scarcity of a capacity: 1 / number of free tables at least that large
    scarcity_of: dict[int, float]
    # free movable same-zone neighbours of each free movable table
    combinable_neighbours: dict[str, frozenset[str]]
    # known bookings' plans as table bitmasks (only bookings that have a plan now)
    lookahead_plans: list[list[int]]
    # the demand still to come that the window's plans would block (None: not weighed)
    demand: DemandView | None = None


def window_view(
    floor: Floor,
    free: Sequence[str],
    lookahead_plans: list[list[int]],
    demand: DemandView | None = None,
) -> WindowView:
    free_set = frozenset(free)
    total: dict[str, int] = {}
    available: dict[str, int] = {}
    for table_id in floor.usable:
        table = floor.tables[table_id]
        total[table.zone] = total.get(table.zone, 0) + table.capacity
        if table_id in free_set:
            available[table.zone] = available.get(table.zone, 0) + table.capacity
    zone_load = {
        zone: 1.0 - available.get(zone, 0) / capacity if capacity else 1.0
        for zone, capacity in total.items()
    }
    capacities = sorted(floor.tables[t].capacity for t in free_set)
    scarcity_of: dict[int, float] = {}
    n = len(capacities)
    for i, capacity in enumerate(capacities):
        if capacity not in scarcity_of:
            scarcity_of[capacity] = 1.0 / (n - i)  # tables with capacity >= this one
    combinable: dict[str, frozenset[str]] = {}
    for table_id in free:
        table = floor.tables[table_id]
        if table.mobility != Mobility.MOVABLE:
            continue
        combinable[table_id] = frozenset(
            other
            for other in floor.neighbours[table_id]
            if other in free_set
            and floor.tables[other].mobility == Mobility.MOVABLE
            and floor.tables[other].zone == table.zone
        )
    return WindowView(free_set, zone_load, scarcity_of, combinable, lookahead_plans, demand)


def fragmentation(tables: Sequence[str], view: WindowView) -> int:
    """Free combinable tables next to the plan that it leaves with no free partner."""
    taken = set(tables)
    orphaned: set[str] = set()
    combinable = view.combinable_neighbours
    for table_id in tables:
        for other in combinable.get(table_id, ()):
            if other in taken or other in orphaned:
                continue
            if all(partner in taken for partner in combinable[other]):
                orphaned.add(other)
    return len(orphaned)


def lookahead(mask: int, view: WindowView) -> int:
    """Known bookings for which every plan they have now uses one of these tables."""
    stranded = 0
    for plans in view.lookahead_plans:
        if all(plan & mask for plan in plans):
            stranded += 1
    return stranded


def idle_gap(floor: Floor, request: BookingRequest, tables: Sequence[str]) -> float:
    """Hours of unusable idle time the booking leaves next to it on its tables."""
    length = request.end - request.start
    idle = 0.0
    for table_id in tables:
        before: timedelta | None = None
        after: timedelta | None = None
        for allocation in floor.allocations_by_table.get(table_id, ()):
            if allocation.end <= request.start:
                gap = request.start - allocation.end
                before = gap if before is None else min(before, gap)
            elif allocation.start >= request.end:
                gap = allocation.start - request.end
                after = gap if after is None else min(after, gap)
        for side in (before, after):
            if side is not None and side < length:
                idle += side.total_seconds() / 3600
    return idle


def lower_bound(
    floor: Floor,
    request: BookingRequest,
    candidate: Candidate,
    view: WindowView,
    weights: ScoreWeights,
) -> float:
    """The cheap terms of the score; the full score is never below this."""
    tables = candidate.tables
    scarcity = round(sum(view.scarcity_of.get(floor.tables[t].capacity, 1.0) for t in tables), 6)
    zone_miss = request.zone_preference is not None and candidate.zone != request.zone_preference
    bound = (
        (candidate.capacity - request.party_size) * weights.overage
        + (len(tables) - 1) * weights.extra_table
        + (1 if len(tables) > 1 else 0) * weights.diameter
        + round(view.zone_load.get(candidate.zone, 1.0), 6) * weights.zone_load
        + scarcity * weights.scarcity
        + zone_miss * weights.zone_miss
    )
    return round(bound, 6) - 1e-6


def score_candidate(
    floor: Floor,
    request: BookingRequest,
    candidate: Candidate,
    view: WindowView,
    weights: ScoreWeights,
) -> Plan:
    tables = candidate.tables
    terms = {
        "overage": float(candidate.capacity - request.party_size),
        "extra_table": float(len(tables) - 1),
        "diameter": float(diameter(tables, floor.neighbours)),
        "fragmentation": float(fragmentation(tables, view)),
        "zone_load": round(view.zone_load.get(candidate.zone, 1.0), 6),
        "lookahead": float(lookahead(floor.mask(tables), view)),
        "scarcity": round(
            sum(view.scarcity_of.get(floor.tables[t].capacity, 1.0) for t in tables), 6
        ),
        "zone_miss": float(
            request.zone_preference is not None and candidate.zone != request.zone_preference
        ),
        "idle_gap": round(idle_gap(floor, request, tables), 6),
        "demand": view.demand.cost(tables) if view.demand is not None else 0.0,
    }
    score = (
        terms["overage"] * weights.overage
        + terms["extra_table"] * weights.extra_table
        + terms["diameter"] * weights.diameter
        + terms["fragmentation"] * weights.fragmentation
        + terms["zone_load"] * weights.zone_load
        + terms["lookahead"] * weights.lookahead
        + terms["scarcity"] * weights.scarcity
        + terms["zone_miss"] * weights.zone_miss
        + terms["idle_gap"] * weights.idle_gap
        + terms["demand"] * weights.demand
    )
    return Plan(
        tables=tables,
        score=round(score, 6),
        strategy=OPTIMAL_FIT,
        breakdown=terms,
        zone=candidate.zone,
        capacity=candidate.capacity,
    )


def rank(plans: list[Plan]) -> list[Plan]:
    return sorted(plans, key=lambda plan: (plan.score, len(plan.tables), plan.tables))


def credit_strategies(
    ranked: list[Plan], left_out: dict[float, float], *, balancing: bool = True
) -> list[Plan]:
    """Name the strategy that contributed each plan.

    A group of tables is the adjacency strategy's proposal. A single table is
    `load_balancing` when it ranks above an equally fitting single table (same
    overage) in a busier zone, i.e. zone load is what put it ahead; otherwise
    it is `optimal_fit`. `left_out` gives, per overage, the busiest zone load of
    single tables that rank below every plan in `ranked` but were cut off.
    Without `balancing` (zone load weighs nothing) no plan is credited to it.
    """
    # Walk from the worst plan up, remembering the busiest zone seen below.
    busiest_below: dict[float, float] = dict(left_out)
    strategies: list[str] = []
    for plan in reversed(ranked):
        overage = plan.breakdown["overage"]
        load = plan.breakdown["zone_load"]
        if len(plan.tables) > 1:
            strategies.append(ADJACENCY)
            continue
        if balancing and load < busiest_below.get(overage, load):
            strategies.append(LOAD_BALANCING)
        else:
            strategies.append(OPTIMAL_FIT)
        busiest_below[overage] = max(busiest_below.get(overage, load), load)
    strategies.reverse()
    return [_with_strategy(plan, name) for plan, name in zip(ranked, strategies, strict=True)]


def _with_strategy(plan: Plan, strategy: str) -> Plan:
    return Plan(
        tables=plan.tables,
        score=plan.score,
        strategy=strategy,
        breakdown=plan.breakdown,
        zone=plan.zone,
        capacity=plan.capacity,
    )
