"""The engine benchmark's policies (bench/engine.py): each sees an evening's
requests one by one at the time they are asked; an accepted booking is
allocated (re-packing moves applied) and never removed.

- `engine_repack`: the booking pipeline's path: the first attempt's search
  (the default configuration: re-packing with the 60-minute freeze, `now` =
  the time the request is asked), and for a request it refuses after the exact
  search ran out of budget, the retry's search with the deep re-pack
  (`Settings.repack_deep_ms` of CP-SAT);
- `engine_repack_first`: the first attempt alone (no retry);
- `engine`: the search without re-packing, plans[0];
- `legacy`: `quote_tables`, first quote;
- `best_fit`: the valid plan with the fewest empty seats, then the fewest tables.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from workload import MANY_MOVES, Request, allocations_of, check_no_double_booking

from seatflow.config import Settings
from seatflow.domain.planning import (
    BookingRequest,
    EngineConfig,
    RestaurantSnapshot,
    SearchResult,
)
from seatflow.engine import quote_tables, search

POLICIES = ["engine_repack", "engine_repack_first", "engine", "legacy", "best_fit"]
DEEP_MS = float(Settings.model_fields["repack_deep_ms"].default)


def timed(
    snapshot: RestaurantSnapshot, request: BookingRequest, config: EngineConfig, now: datetime
) -> tuple[SearchResult, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = search(snapshot, request, config, now=now)
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def simulate(
    floor: RestaurantSnapshot, requests: list[Request], policy: str, attribute: bool = False
) -> dict[str, Any]:
    # The solvers of the yardsticks leave a large heap behind; freezing it keeps
    # the collector's full passes out of the latency measured here.
    gc.collect()
    gc.freeze()
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    moves = exact = bounded = widest = many = retries = deep_seated = 0
    deep_wall: list[float] = []
    causes: dict[str, int] = {}  # covers refused, by what would have seated them
    wall: list[float] = []
    cpu: list[float] = []
    repack_wall: list[float] = []
    for req in requests:
        snapshot = allocations_of(floor, held, by_id)
        request = req.booking()
        tables: tuple[str, ...] | None = None
        if policy in ("engine_repack", "engine_repack_first", "engine"):
            config = EngineConfig(repack=policy != "engine", max_plans=1)
            result, w, c = timed(snapshot, request, config, req.asked_at)
            wall.append(w)
            cpu.append(c)
            if result.repack:
                repack_wall.append(w)
                exact += result.repack == "exact"
                bounded += result.repack == "bounded"
            if policy == "engine_repack" and not result.plans and result.repack == "bounded":
                # the workflow's retry: the same search plus the deep re-pack
                retry = replace(config, repack_deep_ms=DEEP_MS)
                result, w, _ = timed(snapshot, request, retry, req.asked_at)
                retries += 1
                deep_wall.append(w)
                deep_seated += bool(result.plans) and result.repack == "deep"
            if result.plans:
                tables = result.plans[0].tables
                for move in result.moves:
                    assert held[move.booking_id] == move.from_tables
                    held[move.booking_id] = move.to_tables
                    moves += 1
                widest = max(widest, len(result.moves))
                many += len(result.moves) > MANY_MOVES
        elif policy == "legacy":
            quotes = quote_tables(snapshot, request)
            tables = quotes[0].tables if quotes else None
        elif policy == "best_fit":
            every = search(snapshot, request, EngineConfig(repack=False, max_plans=100000))
            if every.plans:
                fewest_seats = min(every.plans, key=lambda p: (p.capacity, len(p.tables), p.tables))
                tables = fewest_seats.tables
        if tables is not None:
            held[req.booking_id] = tables
        elif attribute:
            why = refusal_cause(snapshot, request, req.asked_at)
            causes[why] = causes.get(why, 0) + req.party
    check_no_double_booking(floor, held, by_id)
    out: dict[str, Any] = {
        "accepted": len(held),
        "covers": sum(by_id[b].party for b in held),
        "wall_ms": wall,
        "cpu_ms": cpu,
    }
    if policy in ("engine_repack", "engine_repack_first"):
        if attribute:
            out["refused_covers_by_cause"] = causes
        out.update(
            moves=moves, most_moves=widest, repacks_over_3_moves=many,
            repack_exact=exact, repack_bounded=bounded, repack_ms=repack_wall,
            deep_retries=retries, deep_seated=deep_seated, deep_ms=deep_wall,
        )
    return out


def refusal_cause(snapshot: RestaurantSnapshot, request: BookingRequest, now: datetime) -> str:
    """What would have seated a request the default configuration refused, on
    the very same floor state: `steps` (the bound's 100,000 exact steps),
    `freeze` (no freeze window), `both`, or `neither` (the bound's own rules
    refuse it too here, so what is lost is the path: earlier choices left this
    state); `neither` counts requests the 100,000 steps could not decide too."""
    default = EngineConfig(max_plans=1)
    steps = replace(
        default, max_exact_steps=100_000, repack_time_budget_ms=None, repack_shallow_share=1.0
    )
    if search(snapshot, request, steps, now=now).plans:
        return "steps"
    if search(snapshot, request, replace(default, repack_freeze_minutes=0), now=now).plans:
        return "freeze"
    if search(snapshot, request, replace(steps, repack_freeze_minutes=0), now=now).plans:
        return "both"
    return "neither"
