"""`quote_tables`: the legacy first-fit planner, kept deliberately simple.

It is the baseline the engine is measured against: free single tables by
ascending capacity (then id), then free adjacent pairs by ascending combined
capacity (then ids). Every plan it returns is still valid (docs/engine.md).
"""

from __future__ import annotations

from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    Mobility,
    Plan,
    RestaurantSnapshot,
)

from .combinations import single_fits
from .floor import DEFAULT_CONFIG, Floor
from .scoring import LEGACY


def quote_tables(
    snapshot: RestaurantSnapshot,
    request: BookingRequest,
    config: EngineConfig = DEFAULT_CONFIG,
) -> list[Plan]:
    party = request.party_size
    if party < 1:
        return []
    floor = Floor(snapshot)
    free = floor.free_tables(request.start, request.end, ignore_bookings=(request.booking_id,))
    tables = floor.tables
    singles = sorted(
        (t for t in free if single_fits(tables[t], party, config.max_overage)),
        key=lambda t: (tables[t].capacity, t),
    )
    quotes: list[tuple[int, tuple[str, ...]]] = [(tables[t].capacity, (t,)) for t in singles]
    if config.max_tables >= 2:
        free_set = set(free)
        pairs: list[tuple[int, tuple[str, ...]]] = []
        for a in free:
            for b in floor.neighbours[a]:
                if b <= a or b not in free_set:
                    continue
                ta, tb = tables[a], tables[b]
                if ta.mobility != Mobility.MOVABLE or tb.mobility != Mobility.MOVABLE:
                    continue
                if ta.zone != tb.zone:
                    continue
                capacity = ta.capacity + tb.capacity
                if party <= capacity <= party + config.max_overage:
                    pairs.append((capacity, (a, b)))
        quotes.extend(sorted(pairs))
    return [
        Plan(
            tables=ids,
            score=float(position),
            strategy=LEGACY,
            breakdown={"overage": float(capacity - party)},
            zone=tables[ids[0]].zone,
            capacity=capacity,
        )
        for position, (capacity, ids) in enumerate(quotes)
    ]
