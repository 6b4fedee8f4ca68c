"""Engine benchmark: seating quality against the offline optimum and the online
re-packing bound, and search latency, per floor shape and per load.

Prints one JSON document and writes it to bench/results/. Not part of the tests.

    python bench/engine.py                      # every shape, 2 seeds (a few minutes a shape)
    python bench/engine.py --shape bistro62     # one shape
    python bench/engine.py --seeds 5            # more seeds (slower)
    python bench/engine.py --quick              # smoke run: 1 seed, 3 loads, short solver limits

Evenings: requests are drawn until their seat-hours (party x table time) reach
the load's share of the floor's seat-hours (seats x 6 service hours,
17:00-23:00): 40% to 170%. Parties 1-12 (mean about 2.7); half are booked
ahead (days before), half on the day (10:00 to 30 minutes before the meal), in
random order of arrival. Each policy sees the requests one by one at the time
they are asked; an accepted booking is allocated (re-packing moves applied)
and never removed.

Policies: `engine` (search without re-packing, plans[0]), `engine_repack`
(the default configuration: re-packing with the 60-minute freeze, `now` = the
time the request is asked), `legacy` (quote_tables, first quote), `best_fit`
(the valid plan with the fewest empty seats, then the fewest tables).

Yardsticks:
- the offline optimum, clairvoyant (every request known up front, any valid
  plan): once maximising bookings (count-optimal), once covers
  (covers-optimal); a set-packing integer program solved by SCIP (OR-Tools),
  with a time limit; the status and the solver's bound are reported;
- the online re-packing bound: requests in the same order; one is accepted iff
  SOME re-assignment of the accepted bookings that have not started (same
  window, same party, any valid plan, any zone) that overlap its window seats
  it too, with no freeze window. Decided by a free plan, else by the engine's
  exact search with a 100,000-step budget and no freeze, else (budget run out)
  by CP-SAT (OR-Tools) over the same bookings (`cpsat_unknown` counts solves
  that hit the time limit, counted as refusals). Bookings that do not overlap
  the request stay put: with every not-started booking of the evening in the
  model, CP-SAT proved nothing within 1 s in 93 of 96 solves on the 40-table
  floor, so that wider bound is out of reach on 2 cores.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from seatflow.config import Settings
from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    EngineConfig,
    Mobility,
    RestaurantSnapshot,
    SearchResult,
    Table,
)
from seatflow.engine import quote_tables, search
from seatflow.engine.combinations import enumerate_plans
from seatflow.engine.floor import Floor

RESULTS = Path(__file__).resolve().parent / "results"
DAY = datetime(2026, 6, 12, tzinfo=UTC)
BUFFER = timedelta(minutes=5)
SERVICE_HOURS = 6  # 17:00-23:00
PARTY_MIX = {
    1: 8, 2: 55, 3: 12, 4: 13, 5: 3, 6: 3.5, 7: 1.5, 8: 1.2, 9: 0.6, 10: 0.5, 11: 0.3, 12: 0.3
}
LOADS = [40, 70, 100, 130, 170]
# engine_repack is the booking pipeline's path: the first attempt's search,
# and for a request it refuses after the exact search ran out of budget, the
# retry's search with the deep re-pack (Settings.repack_deep_ms of CP-SAT).
# engine_repack_first is the first attempt alone (no retry).
POLICIES = ["engine_repack", "engine_repack_first", "engine", "legacy", "best_fit"]
DEEP_MS = float(Settings.model_fields["repack_deep_ms"].default)
LATENCY_SHAPE = "bistro62"
MANY_MOVES = 3  # re-packs moving more bookings than this are counted apart


def turn_minutes(party: int) -> int:
    if party <= 2:
        return 90
    if party <= 4:
        return 105
    if party <= 6:
        return 120
    return 135


# ---------------------------------------------------------------- floors


def row(prefix: str, count: int, capacity: int, zone: str, mobility: Mobility) -> list[Table]:
    return [Table(f"{prefix}{i + 1:02d}", capacity, zone, mobility=mobility) for i in range(count)]


def chain(tables: list[Table]) -> list[tuple[str, str]]:
    return [(a.id, b.id) for a, b in pairwise(tables)]


def sample40() -> RestaurantSnapshot:
    """The 40-table sample floor: rows of 2-, 4-, 6- and 8-tops, two zones."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    rows = [
        row("A", 7, 2, "main", movable),
        row("B", 7, 4, "main", movable),
        row("C", 4, 6, "main", movable),
        row("D", 2, 8, "main", fixed),
        row("E", 7, 2, "patio", movable),
        row("F", 7, 4, "patio", movable),
        row("G", 4, 6, "patio", fixed),
        row("H", 2, 8, "patio", movable),
    ]
    tables = [t for r in rows for t in r]
    edges = [e for r in rows for e in chain(r)]
    # rows A/B and E/F face each other: each 2-top touches the 4-top opposite
    edges += [(a.id, b.id) for a, b in zip(rows[0], rows[1], strict=True)]
    edges += [(a.id, b.id) for a, b in zip(rows[4], rows[5], strict=True)]
    return RestaurantSnapshot("sample40", tuple(tables), tuple(edges))


def bistro62() -> RestaurantSnapshot:
    """62 tables in four zones: two banquettes of ten movable 2-tops, a 4 x 4
    grid of movable 4-tops, eight fixed booths (four 4s, four 6s), a bar of
    twelve movable stools and six fixed high-tops of 2."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    north = row("BN", 10, 2, "banquette", movable)
    south = row("BS", 10, 2, "banquette", movable)
    grid = row("G", 16, 4, "dining", movable)
    booths = row("K", 4, 4, "booths", fixed) + row("L", 4, 6, "booths", fixed)
    stools = row("S", 12, 1, "bar", movable)
    high = row("HT", 6, 2, "bar", fixed)
    edges = chain(north) + chain(south) + chain(stools)
    for r in range(4):
        cells = grid[4 * r : 4 * r + 4]
        edges += chain(cells)
        if r:
            edges += [(a.id, b.id) for a, b in zip(grid[4 * r - 4 : 4 * r], cells, strict=True)]
    tables = north + south + grid + booths + stools + high
    return RestaurantSnapshot("bistro62", tuple(tables), tuple(edges))


def corner9() -> RestaurantSnapshot:
    """A 9-table corner bistro in two zones: a chain of movable 2-, 2-, 4-, 4-tops
    and a fixed 6 inside, a terrace of two movable 2-tops, a movable 4 and a fixed 8."""
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    inside = [
        Table("I1", 2, "inside"),
        Table("I2", 2, "inside"),
        Table("I3", 4, "inside"),
        Table("I4", 4, "inside"),
        Table("I5", 6, "inside", mobility=fixed),
    ]
    terrace = [
        Table("T1", 2, "terrace"),
        Table("T2", 2, "terrace"),
        Table("T3", 4, "terrace", mobility=movable),
        Table("T4", 8, "terrace", mobility=fixed),
    ]
    edges = chain(inside[:4]) + chain(terrace[:3])
    return RestaurantSnapshot("corner9", tuple(inside + terrace), tuple(edges))


def family_floor(seed: int) -> tuple[RestaurantSnapshot, dict[int, float]]:
    """One floor of a generated family, with its party mix: 1-4 zones, each a
    banquette of movable 2-tops, a grid of movable 4-tops, fixed booths, a bar
    of movable stools and fixed high-tops, or a mixed row of movable 2- and
    4-tops; 2 to about 70 tables. The mix is the default one, couple-heavy or
    group-heavy. Not tuned for any policy: every kind of zone the bench shapes
    use, in random sizes."""
    rng = random.Random(f"family-{seed}")
    movable, fixed = Mobility.MOVABLE, Mobility.FIXED
    tables: list[Table] = []
    edges: list[tuple[str, str]] = []
    kinds = ["banquette", "grid", "booths", "bar", "mixed"]
    for z in range(rng.randint(1, 4)):
        kind = rng.choice(kinds)
        zone = f"{kind}{z}"
        prefix = f"Z{z}"
        if kind == "banquette":
            r = row(f"{prefix}B", rng.randint(4, 12), 2, zone, movable)
            tables += r
            edges += chain(r)
        elif kind == "grid":
            rows, cols = rng.randint(2, 4), rng.randint(2, 4)
            cells = row(f"{prefix}G", rows * cols, 4, zone, movable)
            tables += cells
            for i in range(rows):
                line = cells[cols * i : cols * i + cols]
                edges += chain(line)
                if i:
                    above = cells[cols * (i - 1) : cols * i]
                    edges += [(a.id, b.id) for a, b in zip(above, line, strict=True)]
        elif kind == "booths":
            tables += [
                Table(f"{prefix}K{i + 1:02d}", rng.choice([4, 4, 6, 6, 8]), zone, mobility=fixed)
                for i in range(rng.randint(2, 8))
            ]
        elif kind == "bar":
            stools = row(f"{prefix}S", rng.randint(6, 14), 1, zone, movable)
            tables += stools + row(f"{prefix}H", rng.randint(2, 6), 2, zone, fixed)
            edges += chain(stools)
        else:
            r = [
                Table(f"{prefix}M{i + 1:02d}", rng.choice([2, 2, 4]), zone, mobility=movable)
                for i in range(rng.randint(4, 10))
            ]
            tables += r
            edges += chain(r)
    mix = dict(PARTY_MIX)
    flavour = rng.choice(["default", "couples", "groups"])
    if flavour == "couples":
        mix[2] *= 2
    elif flavour == "groups":
        for party in range(5, 13):
            mix[party] *= 3
    floor = RestaurantSnapshot(f"family{seed}-{flavour}", tuple(tables), tuple(edges))
    return floor, mix


SHAPES: dict[str, Callable[[], RestaurantSnapshot]] = {
    "sample40": sample40,
    "bistro62": bistro62,
    "corner9": corner9,
}


# ---------------------------------------------------------------- evenings


@dataclass(frozen=True)
class Request:
    booking_id: str
    party: int
    start: datetime
    end: datetime
    asked_at: datetime

    def booking(self) -> BookingRequest:
        return BookingRequest(self.booking_id, self.party, self.start, self.end)


def draw_start(rng: random.Random) -> datetime:
    # 15-minute slots 17:00-21:30, peaking 19:00-20:00
    slots = [17 * 60 + 15 * i for i in range(19)]
    weights = [3 if 19 * 60 <= m < 20 * 60 else 2 if 18 * 60 <= m < 21 * 60 else 1 for m in slots]
    return DAY + timedelta(minutes=rng.choices(slots, weights=weights)[0])


def evening(
    floor: RestaurantSnapshot, load: int, seed: int, mix: dict[int, float] | None = None
) -> list[Request]:
    """Requests until their seat-hours reach `load` % of the floor's, in arrival order."""
    mix = mix or PARTY_MIX
    rng = random.Random(f"{floor.restaurant_id}-{load}-{seed}")
    seats = sum(t.capacity for t in floor.tables)
    target = load / 100 * seats * SERVICE_HOURS
    requests: list[Request] = []
    total = 0.0
    while total < target:
        party = rng.choices(list(mix), weights=list(mix.values()))[0]
        start = draw_start(rng)
        end = start + timedelta(minutes=turn_minutes(party)) + BUFFER
        if rng.random() < 0.5:  # same day: between 10:00 and 30 minutes before the meal
            earliest = DAY + timedelta(hours=10)
            span = (start - timedelta(minutes=30) - earliest).total_seconds()
            asked = earliest + timedelta(seconds=rng.uniform(0, span))
        else:
            asked = DAY - timedelta(days=rng.uniform(0.1, 21))
        requests.append(Request(f"r{len(requests):04d}", party, start, end, asked))
        total += party * turn_minutes(party) / 60
    return sorted(requests, key=lambda r: (r.asked_at, r.booking_id))


# ---------------------------------------------------------------- policies


def allocations_of(
    floor: RestaurantSnapshot, held: dict[str, tuple[str, ...]], by_id: dict[str, Request]
) -> RestaurantSnapshot:
    return replace(
        floor,
        allocations=tuple(
            Allocation(b, t, by_id[b].start, by_id[b].end, by_id[b].party, by_id[b].start)
            for b, tables in held.items()
            for t in tables
        ),
    )


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
                tables = min(every.plans, key=lambda p: (p.capacity, len(p.tables), p.tables)).tables
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


def check_no_double_booking(
    floor: RestaurantSnapshot, held: dict[str, tuple[str, ...]], by_id: dict[str, Request]
) -> None:
    by_table: dict[str, list[Request]] = {}
    for b, tables in held.items():
        for t in tables:
            by_table.setdefault(t, []).append(by_id[b])
    for t, bookings in by_table.items():
        ordered = sorted(bookings, key=lambda r: r.start)
        for a, b in pairwise(ordered):
            assert a.end <= b.start, f"{floor.restaurant_id}: {t} double-booked"


def seated(
    floor: RestaurantSnapshot, held: dict[str, tuple[str, ...]], by_id: dict[str, Request]
) -> dict[str, int]:
    """An evening's end: checked for double booking, then its bookings and covers."""
    check_no_double_booking(floor, held, by_id)
    return {"bookings": len(held), "covers": sum(by_id[b].party for b in held)}


# ---------------------------------------------------------------- yardsticks


def all_plans(snapshot: RestaurantSnapshot, request: BookingRequest) -> list[tuple[str, ...]]:
    """Every valid plan free for `request` (the default plan rules, any zone),
    enumerated without scoring."""
    config = EngineConfig()
    floor = Floor(snapshot)
    free = floor.free_tables(request.start, request.end, ignore_bookings=(request.booking_id,))
    enumeration = enumerate_plans(floor, request.party_size, free, config)
    return sorted(c.tables for c in enumeration.candidates)


def optimum(
    floor: RestaurantSnapshot, requests: list[Request], objective: str, seconds: float
) -> dict[str, Any]:
    """The clairvoyant optimum by SCIP: one binary per (request, valid plan), at
    most one plan per request, and per table and booking start at most one of
    the requests holding it then (intervals on a line overlap iff they share a
    start point). Maximises bookings then covers, or covers then bookings."""
    from ortools.linear_solver import pywraplp

    began = time.process_time()
    solver = pywraplp.Solver.CreateSolver("SCIP")
    chosen: list[tuple[Any, Request]] = []
    holds: dict[str, list[tuple[Request, Any]]] = {}
    for req in requests:
        options = []
        for tables in all_plans(floor, req.booking()):
            var = solver.BoolVar(f"{req.booking_id}:{'+'.join(tables)}")
            options.append(var)
            chosen.append((var, req))
            for t in tables:
                holds.setdefault(t, []).append((req, var))
        if len(options) > 1:
            solver.Add(solver.Sum(options) <= 1)
    for held in holds.values():
        for point in sorted({r.start for r, _ in held}):
            covering = [var for r, var in held if r.start <= point < r.end]
            if len(covering) > 1:
                solver.Add(solver.Sum(covering) <= 1)
    big = 1000
    if objective == "bookings":
        solver.Maximize(solver.Sum([(big + r.party) * v for v, r in chosen]))
    else:
        solver.Maximize(solver.Sum([(big * r.party + 1) * v for v, r in chosen]))
    solver.SetTimeLimit(int(seconds * 1000))
    status = solver.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        raise RuntimeError(f"SCIP found no solution (status {status})")
    accepted = sum(1 for v, _ in chosen if v.solution_value() > 0.5)
    covers = sum(r.party for v, r in chosen if v.solution_value() > 0.5)
    bound = solver.Objective().BestBound()
    upper = int(bound // big)  # bookings (or covers) times big dominates the objective
    return {
        "bookings": accepted,
        "covers": covers,
        "proven": status == pywraplp.Solver.OPTIMAL,
        # the solver's bound on the optimised quantity (bookings or covers)
        "upper_bound": upper,
        "cpu_seconds": round(time.process_time() - began, 1),
    }


def online_bound(
    floor: RestaurantSnapshot, requests: list[Request], cpsat_seconds: float
) -> dict[str, Any]:
    """The online re-packing bound (see the module docstring)."""
    began = time.process_time()
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    solves = unknown = flipped = moves = widest = many = 0
    # any valid plan at any time: no holding back of three-table plans
    free_only = EngineConfig(repack=False, max_plans=1, wide_plan_lead_minutes=None)
    exact = EngineConfig(
        repack=True,
        max_plans=1,
        wide_plan_lead_minutes=None,
        repack_freeze_minutes=0,
        max_exact_steps=100_000,
        repack_time_budget_ms=None,
        repack_shallow_share=1.0,  # the fewest moves first, as before
    )
    for req in requests:
        now = req.asked_at
        snapshot = allocations_of(floor, held, by_id)
        request = req.booking()
        result = search(snapshot, request, free_only, now=now)
        if result.plans:
            held[req.booking_id] = result.plans[0].tables
            continue
        result = search(snapshot, request, exact, now=now)
        if result.plans:
            for move in result.moves:
                held[move.booking_id] = move.to_tables
            held[req.booking_id] = result.plans[0].tables
            moves += len(result.moves)
            widest = max(widest, len(result.moves))
            many += len(result.moves) > MANY_MOVES
            continue
        if result.repack == "exact":
            continue  # proven: no re-assignment seats it
        # the exact search ran out of steps: CP-SAT decides, over the same bookings
        movable = sorted(b for b in held if by_id[b].start > now and _overlap(by_id[b], req))
        status, seats = cpsat_repack(floor, held, by_id, req, movable, cpsat_seconds)
        solves += status != "no plan"
        if seats is not None:
            flipped += 1
            moved = sum(b in held and held[b] != tables for b, tables in seats.items())
            held.update(seats)
            moves += moved
            widest = max(widest, moved)
            many += moved > MANY_MOVES
        elif status == "unknown":
            unknown += 1
    return {
        **seated(floor, held, by_id),
        "cpsat_solves": solves,
        "cpsat_accepted": flipped,
        "cpsat_unknown": unknown,
        # bookings moved to seat new ones; the most for one request; requests
        # seated by moving more than MANY_MOVES (each move is a guest email)
        "moves": moves,
        "most_moves": widest,
        "repacks_over_3_moves": many,
        "cpu_seconds": round(time.process_time() - began, 1),
    }


def cpsat_repack(
    floor: RestaurantSnapshot,
    held: dict[str, tuple[str, ...]],
    by_id: dict[str, Request],
    req: Request,
    movable: list[str],
    seconds: float,
    fewest_moves: bool = False,
) -> tuple[str, dict[str, tuple[str, ...]] | None]:
    """CP-SAT over `movable` and `req` (every other held booking stays): one
    valid plan each (any plan, any zone), no table shared at any booking start.
    Returns ("found", the plans of `movable` and `req`), ("infeasible", None),
    ("no plan", None) when one of them has no valid plan at all, or ("unknown",
    None) when `seconds` ran out; with `fewest_moves`, the solution
    found within `seconds` that moves the fewest bookings, else the first one
    (the current plans as the hint)."""
    from ortools.sat.python import cp_model

    fixed = {b: t for b, t in held.items() if b not in set(movable)}
    base = allocations_of(floor, fixed, by_id)
    model = cp_model.CpModel()
    variables: dict[str, list[tuple[Any, tuple[str, ...]]]] = {}
    holds: dict[str, list[tuple[Request, Any]]] = {}
    stays = []
    for b in [*movable, req.booking_id]:
        plans = all_plans(base, by_id[b].booking())
        if not plans:
            return "no plan", None  # (not solved: nothing to ask CP-SAT)
        variables[b] = []
        for tables in plans:
            var = model.new_bool_var(f"{b}:{'+'.join(tables)}")
            variables[b].append((var, tables))
            for t in tables:
                holds.setdefault(t, []).append((by_id[b], var))
            if held.get(b) == tables:
                model.add_hint(var, True)
                stays.append(var)
        model.add_exactly_one(v for v, _ in variables[b])
    for pairs in holds.values():
        for point in sorted({r.start for r, _ in pairs}):
            covering = [v for r, v in pairs if r.start <= point < r.end]
            if len(covering) > 1:
                model.add_at_most_one(covering)
    if fewest_moves:
        model.maximize(sum(stays))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "found", {
            b: next(t for v, t in options if solver.value(v)) for b, options in variables.items()
        }
    return ("infeasible" if status == cp_model.INFEASIBLE else "unknown"), None


def _overlap(a: Request, b: Request) -> bool:
    return a.start < b.end and b.start < a.end


# ---------------------------------------------------------------- report


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 3)


def latency(samples: list[float]) -> dict[str, float | int]:
    return {
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "p99_ms": percentile(samples, 99),
        "samples": len(samples),
    }


def mean(values: list[float]) -> float:
    return round(statistics.mean(values), 4) if values else 0.0


def yardstick_code() -> str:
    """A digest of the code the yardsticks run: this file, and the engine whose
    plan enumeration the optima use and whose placement and exact search the
    online bound uses."""
    src = Path(__file__).resolve().parent.parent / "src" / "seatflow"
    files = [Path(__file__).resolve(), src / "domain" / "planning.py",
             *sorted((src / "engine").glob("*.py"))]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


def cached_yardstick(
    cache: Path | None,
    kind: str,
    floor: RestaurantSnapshot,
    requests: list[Request],
    limit: float,
    compute: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`compute()`, or its earlier result for the same floor, evening, kind and
    solver limit from `cache`. The yardsticks do not depend on the policies
    measured, so a policy can be measured again without solving them again; the
    key is a digest of the floor, the evening, the kind and the limit, so a
    changed floor or evening is solved afresh. They do run engine code (the
    bound places and re-packs with the engine's own search), so each entry keeps
    the digest of that code (`yardstick_code`): a cached result says it is one
    (`"cached": true`) and whether other code solved it (`"other_code": true`);
    after a change to what the yardsticks run, use a fresh cache."""
    if cache is None:
        return compute()
    # the reprs of frozen dataclasses name every field, so any change shows
    spec = repr((kind, limit, floor.tables, sorted(floor.adjacency), requests))
    digest = hashlib.sha256(spec.encode()).hexdigest()[:24]
    path = cache / f"{floor.restaurant_id}-{kind}-{digest}.json"
    code = yardstick_code()
    if path.exists():
        kept = json.loads(path.read_text())
        return {**kept, "cached": True, "other_code": kept.get("code") != code}
    result = compute()
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_text(json.dumps({**result, "code": code}))
    partial.replace(path)  # whole or absent, even with two runs sharing the cache
    return result


def bench_shape(
    name: str,
    loads: list[int],
    seeds: list[int],
    quick: bool,
    yardsticks_on: bool = True,
    solver_seconds: float | None = None,
    attribute: bool = False,
    cache: Path | None = None,
) -> dict[str, Any]:
    floor = SHAPES[name]()
    if solver_seconds is None:
        solver_seconds = 5.0 if quick else 10.0
    bound_seconds = 1.0 if quick else 2.0
    cells: dict[str, Any] = {}
    for load in loads:
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
        yardsticks: dict[str, list[dict[str, Any]]] = {"covers": [], "bookings": [], "bound": []}
        for seed in seeds:
            requests = evening(floor, load, seed)
            for policy in POLICIES:
                runs[policy].append(
                    simulate(floor, requests, policy, attribute and policy == "engine_repack")
                )
            if not yardsticks_on:
                continue
            for kind, limit, compute in (
                ("bookings", solver_seconds,
                 lambda r=requests: optimum(floor, r, "bookings", solver_seconds)),
                ("covers", solver_seconds,
                 lambda r=requests: optimum(floor, r, "covers", solver_seconds)),
                ("bound", bound_seconds,
                 lambda r=requests: online_bound(floor, r, bound_seconds)),
            ):
                yardsticks[kind].append(
                    cached_yardstick(cache, kind, floor, requests, limit, compute)
                )
        cell: dict[str, Any] = {
            "requests": mean([len(evening(floor, load, s)) for s in seeds]),
        }
        if yardsticks_on:
            cell.update(_yardstick_summary(yardsticks))
        for policy in POLICIES:
            cell[policy] = _policy_summary(policy, runs[policy], yardsticks)
        cells[str(load)] = cell
        print(f"{name} {load}% done", file=sys.stderr)
    return {
        "tables": len(floor.tables),
        "seats": sum(t.capacity for t in floor.tables),
        "zones": sorted({t.zone for t in floor.tables}),
        "loads": cells,
    }


def _yardstick_summary(yardsticks: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        # solved in an earlier run with --yardstick-cache (cpu_seconds are of that
        # run), and of those, solved by other code than this run's (yardstick_code)
        "cached": sum(bool(o.get("cached")) for rows in yardsticks.values() for o in rows),
        "cached_other_code": sum(
            bool(o.get("other_code")) for rows in yardsticks.values() for o in rows
        ),
        "optimum_bookings": {
            "bookings": mean([o["bookings"] for o in yardsticks["bookings"]]),
            "upper_bound": mean([o["upper_bound"] for o in yardsticks["bookings"]]),
            "proven": sum(o["proven"] for o in yardsticks["bookings"]),
            "cpu_seconds": mean([o["cpu_seconds"] for o in yardsticks["bookings"]]),
        },
        "optimum_covers": {
            "covers": mean([o["covers"] for o in yardsticks["covers"]]),
            "upper_bound": mean([o["upper_bound"] for o in yardsticks["covers"]]),
            "proven": sum(o["proven"] for o in yardsticks["covers"]),
            "cpu_seconds": mean([o["cpu_seconds"] for o in yardsticks["covers"]]),
        },
        "online_bound": {
            key: mean([b[key] for b in yardsticks["bound"]])
            for key in (
                "bookings",
                "covers",
                "cpsat_solves",
                "cpsat_accepted",
                "cpsat_unknown",
                "moves",
                "most_moves",
                "repacks_over_3_moves",
                "cpu_seconds",
            )
        },
    }


def _policy_summary(
    policy: str, rows: list[dict[str, Any]], yardsticks: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "bookings": mean([r["accepted"] for r in rows]),
        "covers": mean([r["covers"] for r in rows]),
        # ratios: mean over seeds of the per-evening ratio (None: yardsticks skipped)
        "bookings_vs_optimum": _ratio(rows, yardsticks["bookings"], "accepted", "bookings"),
        "covers_vs_optimum": _ratio(rows, yardsticks["covers"], "covers", "covers"),
        "bookings_vs_bound": _ratio(rows, yardsticks["bound"], "accepted", "bookings"),
        "covers_vs_bound": _ratio(rows, yardsticks["bound"], "covers", "covers"),
    }
    if policy in ("engine", "engine_repack", "engine_repack_first"):
        entry["latency_ms"] = latency([w for r in rows for w in r["wall_ms"]])
        entry["cpu_latency_ms"] = latency([c for r in rows for c in r["cpu_ms"]])
    if policy in ("engine_repack", "engine_repack_first"):
        entry["moves"] = mean([r["moves"] for r in rows])
        entry["most_moves"] = max(r["most_moves"] for r in rows)
        entry["repacks_over_3_moves"] = mean([r["repacks_over_3_moves"] for r in rows])
        if "refused_covers_by_cause" in rows[0]:
            causes = sorted({c for r in rows for c in r["refused_covers_by_cause"]})
            entry["refused_covers_by_cause"] = {
                c: mean([r["refused_covers_by_cause"].get(c, 0) for r in rows]) for c in causes
            }
        entry["repack_exact"] = mean([r["repack_exact"] for r in rows])
        entry["repack_bounded"] = mean([r["repack_bounded"] for r in rows])
        entry["repack_latency_ms"] = latency([w for r in rows for w in r["repack_ms"]])
    if policy == "engine_repack":
        # the retry's search (not in latency_ms: that is the first attempt's)
        entry["deep_retries"] = mean([r["deep_retries"] for r in rows])
        entry["deep_seated"] = mean([r["deep_seated"] for r in rows])
        entry["deep_retry_latency_ms"] = latency([w for r in rows for w in r["deep_ms"]])
    return entry


def _ratio(
    rows: list[dict[str, Any]], ref: list[dict[str, Any]], mine: str, theirs: str
) -> float | None:
    if not ref:
        return None  # yardsticks skipped
    return mean([r[mine] / max(1, o[theirs]) for r, o in zip(rows, ref, strict=True)])


def targets(shapes: dict[str, Any]) -> dict[str, Any]:
    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    out: dict[str, Any] = {}
    repack_bound = {
        f"{s}/{load}": cell["engine_repack"]["covers_vs_bound"]
        for s, shape in shapes.items()
        for load, cell in shape["loads"].items()
        if cell["engine_repack"]["covers_vs_bound"] is not None
    }
    out["engine_repack_covers_ge_99pct_of_online_bound"] = {
        "verdict": verdict(all(v >= 0.99 for v in repack_bound.values()))
        if repack_bound
        else "skipped",
        "worst": min(repack_bound.items(), key=lambda kv: kv[1]) if repack_bound else None,
    }
    behind = [
        f"{s}/{load}: {what} {cell['engine'][what]} < legacy {cell['legacy'][what]}"
        for s, shape in shapes.items()
        for load, cell in shape["loads"].items()
        for what in ("covers", "bookings")
        if cell["engine"][what] < cell["legacy"][what]
    ]
    out["engine_ge_legacy_in_covers_and_bookings"] = {
        "verdict": verdict(not behind),
        "behind": behind,
    }
    if LATENCY_SHAPE in shapes:
        loads = shapes[LATENCY_SHAPE]["loads"]
        top = loads[max(loads, key=int)]
        p95 = top["engine_repack"]["latency_ms"]["p95_ms"]
        out[f"repack_p95_under_25ms_on_{LATENCY_SHAPE}_at_top_load"] = {
            "verdict": verdict(p95 < 25.0),
            "p95_ms": p95,
            "cpu_p95_ms": top["engine_repack"]["cpu_latency_ms"]["p95_ms"],
            "load": max(loads, key=int),
        }
    alone = {
        f"{s}/{load}": cell["engine"]["latency_ms"]["p95_ms"]
        for s, shape in shapes.items()
        for load, cell in shape["loads"].items()
    }
    out["search_alone_p95_under_5ms_everywhere"] = {
        "verdict": verdict(all(v < 5.0 for v in alone.values())),
        "worst": max(alone.items(), key=lambda kv: kv[1]) if alone else None,
    }
    return out


def bench_family(count: int, loads: list[int], seed: int = 1) -> dict[str, Any]:
    """The engine without re-packing against legacy on `count` generated floors
    (`family_floor`), one evening per load: where the engine is behind."""
    floors: dict[str, Any] = {}
    behind: list[str] = []
    total = {"bookings": 0.0, "covers": 0.0}
    for index in range(1, count + 1):
        floor, mix = family_floor(index)
        cells: dict[str, Any] = {}
        for load in loads:
            requests = evening(floor, load, seed, mix)
            engine = simulate(floor, requests, "engine")
            legacy = simulate(floor, requests, "legacy")
            cell = {
                "requests": len(requests),
                "engine": {"bookings": engine["accepted"], "covers": engine["covers"]},
                "legacy": {"bookings": legacy["accepted"], "covers": legacy["covers"]},
            }
            for what in ("bookings", "covers"):
                diff = cell["engine"][what] - cell["legacy"][what]
                total[what] += diff
                if diff < 0:
                    behind.append(f"{floor.restaurant_id}/{load}: {what} {diff:+d}")
            cells[str(load)] = cell
        floors[floor.restaurant_id] = {
            "tables": len(floor.tables),
            "seats": sum(t.capacity for t in floor.tables),
            "zones": sorted({t.zone for t in floor.tables}),
            "loads": cells,
        }
        print(f"family {floor.restaurant_id} done", file=sys.stderr)
    return {
        "floors": floors,
        "engine_minus_legacy": total,
        "cells": count * len(loads),
        "engine_behind_legacy": behind,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, loads 40/100/170")
    parser.add_argument("--seeds", type=int, default=2, help="evenings per shape and load")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="repeatable")
    parser.add_argument("--out", help="result file name under bench/results/")
    parser.add_argument(
        "--no-yardsticks",
        action="store_true",
        help="skip the offline optima and the online bound (policies and latency only)",
    )
    parser.add_argument(
        "--solver-seconds",
        type=float,
        help="SCIP time limit per offline optimum (default 5 with --quick, else 10)",
    )
    parser.add_argument(
        "--attribute",
        action="store_true",
        help="for each request engine + re-packing refuses, what would have seated it "
        "on the same state (refusal_cause; slower)",
    )
    parser.add_argument(
        "--yardstick-cache",
        type=Path,
        metavar="DIR",
        help="keep the optima and the online bound of each evening in DIR and reuse them "
        "(they do not depend on the policies measured; a 62-table evening at 170%% costs "
        "minutes); each cell counts those solved by other engine code (cached_other_code)",
    )
    parser.add_argument(
        "--family",
        type=int,
        default=0,
        metavar="N",
        help="also compare engine and legacy on N generated floors (family_floor)",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    began = time.perf_counter()
    load_average = [round(x, 2) for x in os.getloadavg()]
    seeds = [1] if args.quick else list(range(1, args.seeds + 1))
    loads = [40, 100, 170] if args.quick else LOADS
    names = args.shape or list(SHAPES)
    shapes = {
        name: bench_shape(
            name, loads, seeds, args.quick, not args.no_yardsticks, args.solver_seconds,
            args.attribute, args.yardstick_cache,
        )
        for name in names
    }
    family = bench_family(args.family, loads) if args.family else None
    document: dict[str, Any] = {
        "benchmark": "seatflow.engine",
        "quick": args.quick,
        "seeds": seeds,
        "solver_seconds": args.solver_seconds or (5.0 if args.quick else 10.0),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # latency is only comparable on a quiet machine: the load says how quiet
            "load_average_at_start": load_average,
        },
        "shapes": shapes,
        "targets": targets(shapes),
        **({"family": family} if family else {}),
        "seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(document, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    name = args.out or f"engine-{'-'.join(names)}{'-quick' if args.quick else ''}.json"
    (RESULTS / name).write_text(text + "\n")
    print(f"written to {RESULTS / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
