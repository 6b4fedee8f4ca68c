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
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from policies import POLICIES, simulate
from workload import SHAPES, evening, family_floor
from yardsticks import cached_yardstick, online_bound, optimum

RESULTS = Path(__file__).resolve().parent / "results"
LOADS = [40, 70, 100, 130, 170]
LATENCY_SHAPE = "bistro62"


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
    run = "quick" if args.quick else f"{len(seeds)}seeds"
    name = args.out or f"engine-{'-'.join(names)}-{run}.json"
    (RESULTS / name).write_text(text + "\n")
    print(f"written to {RESULTS / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
