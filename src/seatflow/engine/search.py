"""`search`: every valid plan for one booking, scored and ranked (docs/engine.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    Plan,
    RestaurantSnapshot,
    SearchResult,
)

from .combinations import enumerate_plans, single_fits
from .demand import DemandView
from .floor import DEFAULT_CONFIG, Floor, floor_clock, overlaps, taken_reason
from .repack import repack
from .scoring import credit_strategies, lower_bound, rank, score_candidate, window_view


def search(
    snapshot: RestaurantSnapshot,
    request: BookingRequest,
    config: EngineConfig = DEFAULT_CONFIG,
    *,
    now: datetime | None = None,
) -> SearchResult:
    """Ranked valid plans for `request`, best first.

    When none exists, `reason` says why for people, and (with `config.repack`)
    the result may instead carry re-packing `moves` of bookings that neither
    have started nor start within `config.repack_freeze_minutes` of `now`, nor
    were placed by hand, nor were moved before, each within its zone, at most
    `config.repack_max_moves` of them, plus the plan they free as `plans[0]`.
    Step budgets decide; `safety_stop` says when a wall-clock backstop did.
    With `now` None no booking counts as started (and none is frozen) except
    those whose `booking_start` is unknown.
    """
    if request.party_size < 1:
        return SearchResult(
            plans=(), reason=f"party size must be at least 1, got {request.party_size}"
        )
    if request.end <= request.start:
        return SearchResult(plans=(), reason="the booking's window ends before it starts")
    request = on_floor_clock(snapshot, request)
    floor = Floor(snapshot)
    free = floor.free_tables(request.start, request.end, ignore_bookings=(request.booking_id,))
    config = plan_config(config, request, now)
    plans, evaluated = rank_plans(floor, request, free, config)
    if plans:
        return SearchResult(plans=tuple(plans[: config.max_plans]), evaluated=evaluated)

    reason = no_plan_reason(floor, request, config)
    if config.repack:
        repacked = repack(floor, request, config, now=now)
        if repacked.plan is not None:
            return SearchResult(
                plans=(repacked.plan,),
                moves=repacked.moves,
                evaluated=evaluated + repacked.evaluated,
                truncated=repacked.truncated,
                repack=repacked.method,
                safety_stop=repacked.safety_stop,
            )
        if repacked.method == "bounded":  # the exact search ran out first
            reason += "; re-packing undecided within its budget"
        if repacked.safety_stop:
            reason += " (a wall-clock safety stop fired)"
        return SearchResult(
            plans=(),
            reason=reason,
            evaluated=evaluated + repacked.evaluated,
            truncated=repacked.truncated,
            repack=repacked.method,
            safety_stop=repacked.safety_stop,
        )
    return SearchResult(plans=(), reason=reason, evaluated=evaluated)


def plan_config(
    config: EngineConfig, request: BookingRequest, now: datetime | None
) -> EngineConfig:
    """The plan rules for `request` asked at `now`.

    Without re-packing: at most two tables a plan while the booking is further
    than `wide_plan_lead_minutes` ahead (a plan made then is final, and three
    tables use up small ones that later small parties need). With re-packing a
    later request can move such a booking, so nothing is held back
    (docs/engine.md, "Three tables"); re-packing may leave seats empty for a
    booking that starts within `repack_snug_lead_minutes` (docs/engine.md,
    "Re-packing never adds an empty seat"); and a booking that starts within the
    freeze window is final from the start, so idle time weighs at least
    `frozen_idle_gap` in its score (docs/engine.md, "Final plans")."""
    if now is None:
        return config
    ahead = request.start - now
    if config.repack:
        snug_lead = config.repack_snug_lead_minutes
        if (
            config.repack_snug
            and snug_lead is not None
            and ahead <= timedelta(minutes=snug_lead)
        ):
            config = replace(config, repack_snug=False)
        weights = config.weights
        if (
            ahead <= timedelta(minutes=config.repack_freeze_minutes)
            and config.frozen_idle_gap > weights.idle_gap
        ):
            return replace(config, weights=replace(weights, idle_gap=config.frozen_idle_gap))
        return config
    lead = config.wide_plan_lead_minutes
    if lead is None or config.max_tables <= 2 or ahead <= timedelta(minutes=lead):
        return config
    return replace(config, max_tables=2)


def rank_plans(
    floor: Floor,
    request: BookingRequest,
    free: tuple[str, ...],
    config: EngineConfig,
    *,
    limit: int | None = None,
) -> tuple[list[Plan], int]:
    """The best `limit` valid plans among `free` (all when None), scored, ranked
    and credited to a strategy.

    Every valid plan is enumerated. Scoring is lazy but exact: candidates are
    visited by a lower bound of their score (the cheap terms, plus one hop of
    diameter for groups), and the visit stops once that bound is strictly worse
    than the limit-th best full score, since every remaining term is >= 0.
    """
    enumeration = enumerate_plans(floor, request.party_size, free, config)
    candidates = enumeration.candidates
    if not candidates:
        return [], enumeration.evaluated
    limit = config.max_plans if limit is None else limit
    weights = config.weights
    demand = None
    if weights.demand > 0 and len(candidates) > 1:
        interest = floor.mask({t for c in candidates for t in c.tables})
        demand = DemandView(floor, request, config, floor.snapshot.demand, interest)
    view = window_view(floor, free, _lookahead_plans(floor, request, config), demand)
    if limit >= len(candidates) or min(vars(weights).values()) < 0:
        scored = [score_candidate(floor, request, c, view, weights) for c in candidates]
        return credit_strategies(
            rank(scored)[:limit], {}, balancing=weights.zone_load > 0
        ), enumeration.evaluated
    bounded = sorted(
        ((lower_bound(floor, request, c, view, weights), c) for c in candidates),
        key=lambda pair: (pair[0], len(pair[1].tables), pair[1].tables),
    )
    best: list[Plan] = []  # ranked whenever it holds `limit` plans
    for bound, candidate in bounded:
        if len(best) >= limit and bound > best[-1].score:
            break
        best.append(score_candidate(floor, request, candidate, view, weights))
        if len(best) >= limit:
            best = rank(best)[:limit]
    best = rank(best)
    returned = {plan.tables for plan in best}
    # Singles left out still matter for naming load_balancing wins over them.
    left_out: dict[float, float] = {}
    for candidate in candidates:
        if len(candidate.tables) == 1 and candidate.tables not in returned:
            overage = float(candidate.capacity - request.party_size)
            load = round(view.zone_load.get(candidate.zone, 1.0), 6)
            left_out[overage] = max(left_out.get(overage, load), load)
    return (
        credit_strategies(best, left_out, balancing=weights.zone_load > 0),
        enumeration.evaluated,
    )


def _lookahead_plans(
    floor: Floor, request: BookingRequest, config: EngineConfig
) -> list[list[int]]:
    """For each known booking overlapping this one, the table sets it could use now."""
    found: list[list[int]] = []
    known = sorted(floor.snapshot.known_bookings, key=lambda k: (k.start, k.booking_id))
    for booking in known:
        if booking.booking_id == request.booking_id or booking.party_size < 1:
            continue
        if not overlaps(booking.start, booking.end, request.start, request.end):
            continue
        free = floor.free_tables(booking.start, booking.end, ignore_bookings=(booking.booking_id,))
        singles = sum(
            1 for t in free if single_fits(floor.tables[t], booking.party_size, config.max_overage)
        )
        if singles > config.max_tables:
            continue  # no plan of max_tables tables can take all of its single tables
        enumeration = enumerate_plans(floor, booking.party_size, free, config)
        if enumeration.candidates:
            found.append([floor.mask(c.tables) for c in enumeration.candidates])
    return found


def no_plan_reason(floor: Floor, request: BookingRequest, config: EngineConfig) -> str:
    """Why nothing fits: the floor itself cannot seat the party, or it is all taken."""
    party = request.party_size
    if not floor.usable:
        return "no table is in service"
    ever = enumerate_plans(floor, party, floor.usable, config)
    if not ever.candidates:
        return f"no table fits a party of {party}"
    return taken_reason(floor, request)


def on_floor_clock(snapshot: RestaurantSnapshot, request: BookingRequest) -> BookingRequest:
    """`request` on the tzinfo of the snapshot's allocations. Datetimes on one
    tzinfo compare by their fields; across two (a hold asked on the
    restaurant's clock, allocations read from PostgreSQL in UTC) every
    comparison asks both for their UTC offset. The same instants either way."""
    clock = floor_clock(snapshot)
    if clock is None or request.start.tzinfo is clock:
        return request
    return replace(request, start=request.start.astimezone(clock),
                   end=request.end.astimezone(clock))
