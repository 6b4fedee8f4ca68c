"""`search`: every valid plan for one booking, scored and ranked (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import datetime

from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    Plan,
    RestaurantSnapshot,
    SearchResult,
)

from .combinations import enumerate_candidates
from .floor import Floor, overlaps
from .repack import repack
from .scoring import credit_strategies, rank, score_candidate, window_view


def search(
    snapshot: RestaurantSnapshot,
    request: BookingRequest,
    config: EngineConfig = EngineConfig(),
    *,
    now: datetime | None = None,
) -> SearchResult:
    """Ranked valid plans for `request`, best first.

    When none exists, `reason` says why for people, and (with `config.repack`)
    the result may instead carry re-packing `moves` of bookings that have not
    started by `now` plus the plan they free as `plans[0]`. With `now` None no
    booking counts as started except those whose `booking_start` is unknown.
    """
    if request.party_size < 1:
        return SearchResult(plans=(), reason=f"party size must be at least 1, got {request.party_size}")
    if request.end <= request.start:
        return SearchResult(plans=(), reason="the booking's window ends before it starts")
    floor = Floor(snapshot)
    free = floor.free_tables(request.start, request.end, ignore_bookings=(request.booking_id,))
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
            )
        return SearchResult(
            plans=(),
            reason=reason,
            evaluated=evaluated + repacked.evaluated,
            truncated=repacked.truncated,
        )
    return SearchResult(plans=(), reason=reason, evaluated=evaluated)


def rank_plans(
    floor: Floor,
    request: BookingRequest,
    free: tuple[str, ...],
    config: EngineConfig,
) -> tuple[list[Plan], int]:
    """All valid plans among `free`, scored, ranked and credited to a strategy."""
    enumeration = enumerate_candidates(
        floor,
        request.party_size,
        free,
        max_tables=config.max_tables,
        max_overage=config.max_overage,
        mode=config.adjacency_mode,
    )
    if not enumeration.candidates:
        return [], enumeration.evaluated
    view = window_view(floor, free, _lookahead_plans(floor, request, config))
    scored = [
        score_candidate(floor, request, candidate, view, config.weights)
        for candidate in enumeration.candidates
    ]
    return credit_strategies(rank(scored)), enumeration.evaluated


def _lookahead_plans(floor: Floor, request: BookingRequest, config: EngineConfig) -> list[list[int]]:
    """For each known booking overlapping this one, the table sets it could use now."""
    found: list[list[int]] = []
    known = sorted(floor.snapshot.known_bookings, key=lambda k: (k.start, k.booking_id))
    for booking in known:
        if booking.booking_id == request.booking_id or booking.party_size < 1:
            continue
        if not overlaps(booking.start, booking.end, request.start, request.end):
            continue
        free = floor.free_tables(booking.start, booking.end, ignore_bookings=(booking.booking_id,))
        enumeration = enumerate_candidates(
            floor,
            booking.party_size,
            free,
            max_tables=config.max_tables,
            max_overage=config.max_overage,
            mode=config.adjacency_mode,
        )
        if enumeration.candidates:
            found.append([floor.mask(c.tables) for c in enumeration.candidates])
    return found


def no_plan_reason(floor: Floor, request: BookingRequest, config: EngineConfig) -> str:
    """Why nothing fits: the floor itself cannot seat the party, or it is all taken."""
    party = request.party_size
    if not floor.usable:
        return "no table is in service"
    ever = enumerate_candidates(
        floor,
        party,
        floor.usable,
        max_tables=config.max_tables,
        max_overage=config.max_overage,
        mode=config.adjacency_mode,
    )
    if not ever.candidates:
        return f"no table fits a party of {party}"
    return f"all fitting tables are taken {request.start:%H:%M}-{request.end:%H:%M}"
