"""Would a runtime CP-SAT step close engine + re-packing's gap to the online bound?

The online bound of bench/engine.py decides what its exact search cannot with
CP-SAT (2 s a request). This measures that idea inside the engine: the default
engine + re-packing, and wherever it refuses a request because its exact
search ran out of budget (`repack == "bounded"`, nothing found), CP-SAT gets
`--seconds` over the same bookings the engine may move (not started, outside
the freeze window, overlapping the request) with the bound's model
(`cpsat_repack`: any valid plan, any zone). An answer whose moves cannot be
applied one at a time (a swap; the database applies moves one by one) is
refused and counted (`cpsat_swaps_refused_per_evening`), as the product
would have to (`--allow-swaps` takes them, as the bound does). Two ways to
take its answer:
`fewest` (the re-assignment moving the fewest bookings found in the time, as
the engine's own re-packing does) and `any` (the first one found, as the
bound does; it may move dozens of bookings, each a guest email).

Reported per load: covers and bookings of each policy on the same evenings
(paired differences against the engine alone, mean and standard error), how
many requests CP-SAT seated, the bookings it moved, and the wall time of the
escalations; with --yardstick-cache, covers as a share of the online bound for
the evenings whose bound is in the cache (none is computed here).

    python bench/engine_escalation.py --loads 100,130 --seeds 1-13
    python bench/engine_escalation.py --loads 130 --seeds 1-5 --yardstick-cache DIR

Prints one JSON document and writes it to bench/results/engine-escalation.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench  # bench/engine.py, next to this file

from seatflow.domain.planning import EngineConfig, RestaurantSnapshot
from seatflow.engine import search
from seatflow.engine.exact import application_order
from seatflow.engine.floor import Floor
from seatflow.engine.repack import movable_bookings

# steps only (no wall-clock budget): the same answers on a busy machine
ENGINE = EngineConfig(max_plans=1, repack_time_budget_ms=None)
WAYS = ("fewest", "any")


def run(
    floor: RestaurantSnapshot,
    requests: list[bench.Request],
    way: str | None,
    seconds: float,
    allow_swaps: bool = False,
) -> dict[str, Any]:
    """One evening: the engine alone (way None) or with the CP-SAT step."""
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    seated = moved = swaps = 0
    escalation_ms: list[float] = []
    for req in requests:
        snapshot = bench.allocations_of(floor, held, by_id)
        request = req.booking()
        result = search(snapshot, request, ENGINE, now=req.asked_at)
        if result.plans:
            for move in result.moves:
                held[move.booking_id] = move.to_tables
            held[req.booking_id] = result.plans[0].tables
            continue
        if way is None or result.repack != "bounded":
            continue
        began = time.perf_counter()
        view = Floor(snapshot)
        movable = movable_bookings(view, request, req.asked_at, ENGINE)
        _, seats = bench.cpsat_repack(
            floor, held, by_id, req, sorted(movable), seconds, fewest_moves=way == "fewest"
        )
        escalation_ms.append((time.perf_counter() - began) * 1000)
        if seats is not None:
            changed = [(movable[b], t) for b, t in seats.items() if b in movable and held[b] != t]
            if not allow_swaps and application_order(view, changed) is None:
                # a swap: the database applies moves one at a time, so the
                # product could not make this re-assignment
                swaps += 1
                continue
            seated += 1
            moved += len(changed)
            held.update(seats)
    return {
        **bench.seated(floor, held, by_id),
        "cpsat_seated": seated,
        "cpsat_moved": moved,
        "cpsat_swaps": swaps,
        "escalation_ms": escalation_ms,
    }


class _NotCached(Exception):
    pass


def cached_bound(
    cache: Path | None, floor: RestaurantSnapshot, requests: list[bench.Request]
) -> int | None:
    """The online bound's covers from the yardstick cache; None when not there."""

    def missing() -> dict[str, Any]:
        raise _NotCached

    if cache is None:
        return None
    try:
        return int(bench.cached_yardstick(cache, "bound", floor, requests, 2.0, missing)["covers"])
    except _NotCached:
        return None


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def paired(differences: list[float]) -> dict[str, float]:
    se = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0
    return {"mean": round(statistics.fmean(differences), 2), "se": round(se, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shape", default="bistro62", choices=sorted(bench.SHAPES))
    parser.add_argument("--loads", default="100,130", help="comma-separated, e.g. 100,130")
    parser.add_argument("--seeds", default="1-5", help="a range 1-13 or a list 1,2,3")
    parser.add_argument("--seconds", type=float, default=0.5, help="CP-SAT limit a request")
    parser.add_argument("--yardstick-cache", type=Path, metavar="DIR")
    parser.add_argument(
        "--allow-swaps",
        action="store_true",
        help="take CP-SAT's answers even when their moves cannot be applied one at a time "
        "(as the online bound does; the 13-evening result files were run so)",
    )
    parser.add_argument("--out", default="engine-escalation.json")
    args = parser.parse_args()
    began = time.perf_counter()
    floor = bench.SHAPES[args.shape]()
    seeds = seeds_of(args.seeds)
    loads: dict[str, Any] = {}
    for load in [int(x) for x in args.loads.split(",")]:
        rows: dict[str, list[dict[str, Any]]] = {"engine": [], **{w: [] for w in WAYS}}
        bound: list[float | None] = []
        for seed in seeds:
            requests = bench.evening(floor, load, seed)
            rows["engine"].append(run(floor, requests, None, args.seconds))
            for way in WAYS:
                rows[way].append(run(floor, requests, way, args.seconds, args.allow_swaps))
            bound.append(cached_bound(args.yardstick_cache, floor, requests))
            print(f"{args.shape} {load}% seed {seed} done", file=sys.stderr)
        cell: dict[str, Any] = {}
        for policy, runs in rows.items():
            entry: dict[str, Any] = {
                "covers": [r["covers"] for r in runs],
                "bookings": [r["bookings"] for r in runs],
            }
            if policy != "engine":
                base = rows["engine"]
                entry["covers_minus_engine"] = paired(
                    [r["covers"] - b["covers"] for r, b in zip(runs, base, strict=True)]
                )
                entry["bookings_minus_engine"] = paired(
                    [r["bookings"] - b["bookings"] for r, b in zip(runs, base, strict=True)]
                )
                entry["cpsat_seated_per_evening"] = statistics.fmean(
                    r["cpsat_seated"] for r in runs
                )
                entry["cpsat_moved_per_evening"] = statistics.fmean(
                    r["cpsat_moved"] for r in runs
                )
                entry["cpsat_swaps_refused_per_evening"] = statistics.fmean(
                    r["cpsat_swaps"] for r in runs
                )
                times = [t for r in runs for t in r["escalation_ms"]]
                entry["escalations_per_evening"] = len(times) / len(runs)
                entry["escalation_ms"] = bench.latency(times) if times else None
            known = [(r["covers"], b) for r, b in zip(runs, bound, strict=True) if b]
            if known:
                entry["covers_vs_bound"] = round(statistics.fmean(c / b for c, b in known), 4)
                entry["evenings_with_bound"] = len(known)
            cell[policy] = entry
        loads[str(load)] = cell
    document = {
        "benchmark": "seatflow.engine_escalation",
        "shape": args.shape,
        "seeds": seeds,
        "cpsat_seconds": args.seconds,
        "allow_swaps": args.allow_swaps,
        "loads": loads,
        "seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(document, indent=1)
    print(text)
    bench.RESULTS.mkdir(exist_ok=True)
    (bench.RESULTS / args.out).write_text(text + "\n")
    print(f"written to {bench.RESULTS / args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
