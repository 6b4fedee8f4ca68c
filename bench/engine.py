"""Engine benchmark: seating quality against the offline optimum and the online
re-packing bound, and search latency, per floor shape and per load.

Prints one JSON document and writes it to bench/results/ (bench/README.md says
what it measures and shows the current figures). Not part of the tests.

    python bench/engine.py                      # every shape, 2 seeds (a few minutes a shape)
    python bench/engine.py --shape bistro62     # one shape
    python bench/engine.py --seeds 5            # more seeds (slower)
    python bench/engine.py --quick              # smoke run: 1 seed, 3 loads, short solver limits

Per shape and load (40% to 170% of the floor's seat-hours), seeded evenings
(`workload.py`) are seated by each policy (`policies.py`) and measured against
the yardsticks (`yardsticks.py`): the offline optimum and the online
re-packing bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from family import FAMILY_POLICIES, bench_family
from policies import POLICIES, simulate
from targets import family_targets, targets
from workload import SHAPES, evening, with_history
from yardsticks import bound_summary, cached_counts, cached_yardstick, mean, online_bound, optimum

RESULTS = Path(__file__).resolve().parent / "results"
LOADS = [40, 70, 100, 130, 170]


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


def bound_limit(quick: bool) -> float:
    """The online bound's CP-SAT limit a solve, deterministic seconds."""
    return 1.0 if quick else 2.0


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
    bound_seconds = bound_limit(quick)
    cells: dict[str, Any] = {}
    bare = floor
    for load in loads:
        floor = with_history(bare, load)  # the demand profile its history gives
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
        yardsticks: dict[str, list[dict[str, Any]]] = {"covers": [], "bookings": [], "bound": []}
        for seed in seeds:
            requests = evening(floor, load, seed)
            for policy in POLICIES:
                runs[policy].append(
                    simulate(floor, requests, policy, attribute and policy == "engine_repack")
                )
            if seed == seeds[0]:  # the same evening again: the same answer?
                again = simulate(floor, requests, "engine_repack")
                first = runs["engine_repack"][-1]
                rerun = {
                    "seed": seed,
                    "covers": first["covers"],
                    "again": again["covers"],
                    "same": again["held"] == first["held"],
                }
            if not yardsticks_on:
                continue
            for kind, limit, compute in (
                ("bookings", solver_seconds,
                 lambda r=requests, f=floor: optimum(f, r, "bookings", solver_seconds)),
                ("covers", solver_seconds,
                 lambda r=requests, f=floor: optimum(f, r, "covers", solver_seconds)),
                ("bound", bound_seconds,
                 lambda r=requests, f=floor: online_bound(f, r, bound_seconds)),
            ):
                yardsticks[kind].append(
                    cached_yardstick(cache, kind, floor, requests, limit, compute)
                )
        cell: dict[str, Any] = {
            "requests": mean([len(evening(floor, load, s)) for s in seeds]),
        }
        if yardsticks_on:
            cell.update(_yardstick_summary(yardsticks, bound_seconds))
        for policy in POLICIES:
            cell[policy] = _policy_summary(policy, runs[policy], yardsticks)
        cell["rerun"] = rerun
        cells[str(load)] = cell
        print(f"{name} {load}% done", file=sys.stderr)
    return {
        "tables": len(floor.tables),
        "seats": sum(t.capacity for t in floor.tables),
        "zones": sorted({t.zone for t in floor.tables}),
        "loads": cells,
    }


def _yardstick_summary(
    yardsticks: dict[str, list[dict[str, Any]]], bound_limit: float
) -> dict[str, Any]:
    return {
        **cached_counts([o for rows in yardsticks.values() for o in rows]),
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
        "online_bound": bound_summary(yardsticks["bound"]) | {"cpsat_seconds_limit": bound_limit},
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
        # as if the bound had also seated every request it left undecided (an estimate)
        "covers_vs_bound_undecided_seated": mean([
            r["covers"] / max(1, o["covers"] + o.get("undecided_covers", 0))
            for r, o in zip(rows, yardsticks["bound"], strict=True)
        ]) if yardsticks["bound"] else None,
        "covers_per_evening": [r["covers"] for r in rows],
        # moves as guests see them (0 without re-packing)
        "moves": mean([r["moves"] for r in rows]),
        "moves_per_seated": mean([r["moves_per_seated"] for r in rows]),
        "zone_changes": mean([r["zone_changes"] for r in rows]),
        "repeat_moves": mean([r["repeat_moves"] for r in rows]),
        "most_moves": max(r["most_moves"] for r in rows),
        "most_moves_of_one_booking": max(r["most_moves_of_one_booking"] for r in rows),
    }
    if policy in ("engine", "engine_repack"):
        entry["latency_ms"] = latency([w for r in rows for w in r["wall_ms"]])
        entry["cpu_latency_ms"] = latency([c for r in rows for c in r["cpu_ms"]])
    if policy == "engine_repack":
        entry["repacks_over_3_moves"] = mean([r["repacks_over_3_moves"] for r in rows])
        if "refused_covers_by_cause" in rows[0]:
            causes = sorted({c for r in rows for c in r["refused_covers_by_cause"]})
            entry["refused_covers_by_cause"] = {
                c: mean([r["refused_covers_by_cause"].get(c, 0) for r in rows]) for c in causes
            }
        # searches a wall-clock safety stop decided (the step budgets did not)
        entry["safety_stops"] = mean([r["safety_stops"] for r in rows])
        entry["repack_exact"] = mean([r["repack_exact"] for r in rows])
        entry["repack_bounded"] = mean([r["repack_bounded"] for r in rows])
        entry["repack_latency_ms"] = latency([w for r in rows for w in r["repack_ms"]])
    return entry


def _ratio(
    rows: list[dict[str, Any]], ref: list[dict[str, Any]], mine: str, theirs: str
) -> float | None:
    if not ref:
        return None  # yardsticks skipped
    return mean([r[mine] / max(1, o[theirs]) for r, o in zip(rows, ref, strict=True)])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
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
        help="the policies on N generated floors (family.py; of the yardsticks the "
        "online bound only); with --shape, those shapes too",
    )
    parser.add_argument(
        "--family-policies",
        default=",".join(FAMILY_POLICIES),
        help="comma list of the policies run on the family (default %(default)s)",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    began = time.perf_counter()
    load_average = [round(x, 2) for x in os.getloadavg()]
    seeds = [1] if args.quick else list(range(1, args.seeds + 1))
    loads = [40, 100, 170] if args.quick else LOADS
    names = args.shape or ([] if args.family else list(SHAPES))
    shapes = {
        name: bench_shape(
            name, loads, seeds, args.quick, not args.no_yardsticks, args.solver_seconds,
            args.attribute, args.yardstick_cache,
        )
        for name in names
    }
    family = (
        bench_family(args.family, loads, seeds, args.family_policies.split(","),
                     None if args.no_yardsticks else bound_limit(args.quick),
                     args.yardstick_cache)
        if args.family
        else None
    )
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
        "targets": {**targets(shapes), **(family_targets(family) if family else {})},
        **({"family": family} if family else {}),
        "seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(document, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    run = "quick" if args.quick else f"{len(seeds)}seeds"
    parts = [*names, *([f"family{args.family}"] if args.family else [])]
    name = args.out or f"engine-{'-'.join(parts)}-{run}.json"
    (RESULTS / name).write_text(text + "\n")
    print(f"written to {RESULTS / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
