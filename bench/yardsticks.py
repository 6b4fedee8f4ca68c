"""The engine benchmark's yardsticks (bench/engine.py), what the policies are
measured against:

- the offline optimum, clairvoyant (every request known up front, any valid
  plan): once maximising bookings (count-optimal), once covers
  (covers-optimal); a set-packing integer program solved by SCIP (OR-Tools),
  with a time limit; the status and the solver's bound are reported;
- the online re-packing bound: requests in the same order; one is accepted iff
  SOME re-assignment of the accepted bookings that have not started (same
  window, same party, any valid plan) that overlap its window seats it too,
  within the rules guests see (a moved booking stays in its zone and is moved
  at most once an evening; as many bookings moved as needed), with no freeze
  window. A new booking may take any zone. Decided by a free plan, else by the engine's
  exact search with a 100,000-step budget and no freeze, else (budget run out)
  by CP-SAT (OR-Tools) over the same bookings, one worker on a deterministic
  time limit (the same answer on a busy machine), its at-most-ones in the LP
  (`cpsat_repack`). A solve that hits the limit would leave its request
  undecided (`undecided`, `undecided_covers`): not seated, so the bound's
  covers would be those of the decided requests, and a policy's ratio to them
  is called met only when nothing was left undecided (`targets.py`); the
  longest solve of an evening is reported (`cpsat_most_seconds`, deterministic
  seconds) to show how far below the limit it stayed. Bookings that do not
  overlap the request stay put (bench/README.md: what the wider bound costs
  and seats).

Both take minutes on the larger floors, so `cached_yardstick` keeps them in a
directory (`--yardstick-cache`). `bound_summary` is a cell's bound as the
shapes (bench/engine.py) and the family (bench/family.py) report it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workload import MANY_MOVES, Request, allocations_of, seated

from seatflow.domain.planning import BookingRequest, EngineConfig, RestaurantSnapshot
from seatflow.engine import search
from seatflow.engine.combinations import enumerate_plans
from seatflow.engine.floor import Floor


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


# any valid plan at any time: no holding back of three-table plans
BOUND_FREE = EngineConfig(repack=False, max_plans=1, wide_plan_lead_minutes=None)
BOUND_EXACT = EngineConfig(
    repack=True,
    max_plans=1,
    wide_plan_lead_minutes=None,
    repack_freeze_minutes=0,
    max_exact_steps=100_000,
    repack_safety_stop_ms=None,  # steps only
    repack_max_moves=None,  # as many moves as needed
    repack_snug=False,  # any valid re-assignment
    repack_shallow_share=1.0,  # the fewest moves first, as before
)


def bound_decides(
    floor: RestaurantSnapshot,
    held: dict[str, tuple[str, ...]],
    by_id: dict[str, Request],
    times_moved: dict[str, int],
    req: Request,
    cpsat_seconds: float,
    any_zone: bool = False,
) -> tuple[str, dict[str, tuple[str, ...]] | None, float]:
    """How the online bound decides `req` on the floor holding `held` (each
    booking moved `times_moved` times): ("free" / "exact" / "found" (by CP-SAT), the new
    plans of the moved bookings and of `req`), or ("refused" / "no plan" /
    "infeasible" / "unknown", None); and CP-SAT's deterministic seconds.
    `any_zone`: CP-SAT straight away, a moved booking in any zone (a diagnosis
    of the zone rule, bench/diverge.py --bound; not the bound's rules)."""
    now = req.asked_at
    request = req.booking()
    if not any_zone:
        snapshot = allocations_of(floor, held, by_id, times_moved)
        result = search(snapshot, request, BOUND_FREE, now=now)
        if result.plans:
            return "free", {req.booking_id: result.plans[0].tables}, 0.0
        result = search(snapshot, request, BOUND_EXACT, now=now)
        if result.plans:
            seats = {move.booking_id: move.to_tables for move in result.moves}
            return "exact", {**seats, req.booking_id: result.plans[0].tables}, 0.0
        if result.repack == "exact":
            return "refused", None, 0.0  # proven: no re-assignment seats it
    # the exact search ran out of steps: CP-SAT decides, over the same bookings
    movable = sorted(
        b for b in held
        if by_id[b].start > now and _overlap(by_id[b], req) and b not in times_moved
    )
    return cpsat_repack(floor, held, by_id, req, movable, cpsat_seconds, any_zone)


def online_bound(
    floor: RestaurantSnapshot,
    requests: list[Request],
    cpsat_seconds: float,
    keep: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The online re-packing bound (see the module docstring); `keep`, when
    given, receives the evening's plans (booking -> tables)."""
    began = time.process_time()
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {} if keep is None else keep
    solves = unknown = unknown_covers = flipped = moves = widest = many = 0
    longest = 0.0
    times_moved: dict[str, int] = {}
    for req in requests:
        status, seats, spent = bound_decides(floor, held, by_id, times_moved, req, cpsat_seconds)
        if status in ("free", "refused"):
            if seats is not None:
                held.update(seats)
            continue
        if status != "exact":
            solves += status != "no plan"
            longest = max(longest, spent)
        if seats is not None:
            flipped += status == "found"
            changed = [b for b, tables in seats.items() if b in held and held[b] != tables]
            moved = len(changed)
            times_moved.update(dict.fromkeys(changed, 1))
            held.update(seats)
            moves += moved
            widest = max(widest, moved)
            many += moved > MANY_MOVES
        elif status == "unknown":
            unknown += 1
            unknown_covers += req.party
    return {
        **seated(floor, held, by_id),
        "cpsat_solves": solves,
        "cpsat_accepted": flipped,
        # the longest CP-SAT solve, deterministic seconds (its limit: cpsat_seconds)
        "cpsat_most_seconds": round(longest, 3),
        # requests the bound could not decide (CP-SAT out of time): not seated
        # here, so `covers` is the bound on the decided requests only
        "undecided": unknown,
        "undecided_covers": unknown_covers,
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
    any_zone: bool = False,
) -> tuple[str, dict[str, tuple[str, ...]] | None, float]:
    """CP-SAT over `movable` and `req` (every other held booking stays): one
    valid plan each (a moved booking within the zone it sits in, the new one in
    any zone), no table shared at any booking start.
    Returns ("found", the plans of `movable` and `req`), ("infeasible", None),
    ("no plan", None) when one of them has no valid plan at all, or ("unknown",
    None) when `seconds` (deterministic) ran out: the first solution found,
    with the current plans as the hint; and the deterministic seconds spent."""
    from ortools.sat.python import cp_model

    fixed = {b: t for b, t in held.items() if b not in set(movable)}
    base = allocations_of(floor, fixed, by_id)
    model = cp_model.CpModel()
    variables: dict[str, list[tuple[Any, tuple[str, ...]]]] = {}
    holds: dict[str, list[tuple[Request, Any]]] = {}
    # zones the floor declares equivalent are one zone (RestaurantSnapshot.zone_groups)
    zone = {t.id: floor.same_zone(t.zone)[0] for t in floor.tables}
    for b in [*movable, req.booking_id]:
        plans = all_plans(base, by_id[b].booking())
        if b in held and not any_zone:  # re-packing keeps a booking in its zone
            own = {zone[t] for t in held[b]}
            plans = [p for p in plans if {zone[t] for t in p} <= own]
        if not plans:
            return "no plan", None, 0.0  # (not solved: nothing to ask CP-SAT)
        variables[b] = []
        for tables in plans:
            var = model.new_bool_var(f"{b}:{'+'.join(tables)}")
            variables[b].append((var, tables))
            for t in tables:
                holds.setdefault(t, []).append((by_id[b], var))
            if held.get(b) == tables:
                model.add_hint(var, True)
        model.add_exactly_one(v for v, _ in variables[b])
    for pairs in holds.values():
        for point in sorted({r.start for r, _ in pairs}):
            covering = [v for r, v in pairs if r.start <= point < r.end]
            if len(covering) > 1:
                model.add_at_most_one(covering)
    solver = cp_model.CpSolver()
    # deterministic time decides, so a busy machine leaves no more undecided;
    # the wall clock only stops a solve far beyond it
    solver.parameters.max_deterministic_time = seconds
    solver.parameters.max_time_in_seconds = 20 * seconds
    solver.parameters.num_workers = 1
    # the model is all Booleans: at the default level CP-SAT reasons on it as
    # clauses only, and a refusal by counting (e.g. more bookings holding a
    # zone at one booking start than it has free tables then) is a pigeonhole
    # proof, exponential in clauses; with the at-most-ones in its LP the LP
    # finds it (sample40 100% seed 3: 5 requests that 50 deterministic
    # seconds left undecided, each proven in under 0.7 s of CPU)
    solver.parameters.linearization_level = 2
    status = solver.solve(model)
    spent = solver.deterministic_time
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return "found", {
            b: next(t for v, t in options if solver.value(v)) for b, options in variables.items()
        }, spent
    return ("infeasible" if status == cp_model.INFEASIBLE else "unknown"), None, spent


def mean(values: list[float]) -> float:
    """The mean, rounded as the bench's results are (0.0 for none)."""
    return round(statistics.mean(values), 4) if values else 0.0


# the online bound of a cell as bench/engine.py reports it for a shape (and
# adds its CP-SAT limit); bench/family.py reports fewer for each family cell
BOUND_FIELDS = (
    "bookings", "covers", "cpsat_solves", "cpsat_accepted", "undecided", "undecided_covers",
    "moves", "most_moves", "repacks_over_3_moves", "cpu_seconds", "cpsat_most_seconds",
)


def bound_summary(
    bounds: list[dict[str, Any]], fields: tuple[str, ...] = BOUND_FIELDS
) -> dict[str, Any]:
    """`fields` of the online bound over a cell's evenings (`online_bound`
    results), in that order: the mean over evenings, except
    `cpsat_most_seconds`, the longest CP-SAT solve of any evening
    (deterministic seconds: how far below its limit the bound decided), and
    `cached` / `cached_other_code` (`cached_counts`)."""
    counts = cached_counts(bounds)
    out: dict[str, Any] = {}
    for field in fields:
        if field == "cpsat_most_seconds":
            out[field] = max((b.get(field, 0.0) for b in bounds), default=0.0)
        elif field in counts:
            out[field] = counts[field]
        else:
            out[field] = mean([b[field] for b in bounds])
    return out


def cached_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """Of yardstick results, those solved in an earlier run (`cached_yardstick`;
    their cpu_seconds are of that run), and of those, those solved by other
    code than this run's (`yardstick_code`)."""
    return {
        "cached": sum(bool(r.get("cached")) for r in results),
        "cached_other_code": sum(bool(r.get("other_code")) for r in results),
    }


def _overlap(a: Request, b: Request) -> bool:
    return a.start < b.end and b.start < a.end


def yardstick_code() -> str:
    """A digest of the code the yardsticks run: this file, the workload, and
    the engine whose plan enumeration the optima use and whose placement and
    exact search the online bound uses."""
    here = Path(__file__).resolve().parent
    src = here.parent / "src" / "seatflow"
    files = [here / "yardsticks.py", here / "workload.py", src / "domain" / "planning.py",
             *sorted((src / "engine").rglob("*.py"))]
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
