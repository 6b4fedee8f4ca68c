"""Engine + re-packing against an online bound whose re-packs move at most K
bookings a request (default 3), beside the uncapped bound of bench/engine.py.

The uncapped bound re-packs with no limit on moves (up to 30-64 bookings moved
for one request on the bench floors; each is a `table_changed` email to a
guest). This asks how much of engine + re-packing's gap to it is those long
re-packs. Same evenings and rules as bench/engine.py's online bound (any valid
plan, any zone for a booking without a wish, no freeze window, exact search of
100,000 steps), except that the exact search stops at K moves
(`ExactRepacker(move_cap=K)`); a search that runs out of steps within K moves
is counted as a refusal (`undecided`), and there is no CP-SAT step.

    python bench/engine_capped.py                 # every shape, the seeds of the multi-seed runs
    python bench/engine_capped.py --shape corner9 --seeds 5 --cap 3

Prints one JSON document and writes it to bench/results/engine-capped.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench  # bench/engine.py, next to this file

from seatflow.domain.planning import EngineConfig
from seatflow.engine import search
from seatflow.engine.exact import ExactRepacker
from seatflow.engine.floor import Floor
from seatflow.engine.repack import movable_bookings

SEEDS = {"sample40": 3, "corner9": 5, "bistro62": 2}  # as the multi-seed runs
FREE = EngineConfig(repack=False, max_plans=1, wide_plan_lead_minutes=None)
BOUND = EngineConfig(
    max_plans=1,
    wide_plan_lead_minutes=None,
    repack_freeze_minutes=0,
    max_exact_steps=100_000,
    repack_time_budget_ms=None,
)


def capped_bound(
    floor: Any, requests: list[bench.Request], cap: int
) -> dict[str, int]:
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    undecided = moves = 0
    for req in requests:
        snapshot = bench.allocations_of(floor, held, by_id)
        request = req.booking()
        result = search(snapshot, request, FREE, now=req.asked_at)
        if result.plans:
            held[req.booking_id] = result.plans[0].tables
            continue
        view = Floor(snapshot)
        movable = movable_bookings(view, request, req.asked_at, BOUND)
        if not movable:
            continue
        outcome = ExactRepacker(view, request, BOUND, movable, move_cap=cap).run()
        undecided += outcome.exhausted
        if outcome.candidate is None:
            continue
        for move in outcome.moves:
            held[move.booking_id] = move.to_tables
        moves += len(outcome.moves)
        held[req.booking_id] = outcome.candidate.tables
    return {
        **bench.seated(floor, held, by_id),
        "moves": moves,
        "undecided": undecided,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shape", action="append", choices=sorted(bench.SHAPES))
    parser.add_argument("--seeds", type=int, help="evenings per cell (default: as SEEDS)")
    parser.add_argument("--cap", type=int, default=3, help="moves a request, at most")
    args = parser.parse_args()
    if args.cap < 1:
        parser.error("--cap must be at least 1")
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    began = time.perf_counter()
    shapes: dict[str, Any] = {}
    worst: tuple[str, float] | None = None
    for name in args.shape or list(bench.SHAPES):
        floor = bench.SHAPES[name]()
        seeds = list(range(1, (args.seeds or SEEDS.get(name, 2)) + 1))
        cells: dict[str, Any] = {}
        for load in bench.LOADS:
            rows = []
            for seed in seeds:
                requests = bench.evening(floor, load, seed)
                bound = capped_bound(floor, requests, args.cap)
                mine = bench.simulate(floor, requests, "engine_repack")
                rows.append((bound, mine))
            ratio = bench.mean([m["covers"] / max(1, b["covers"]) for b, m in rows])
            cells[str(load)] = {
                "capped_bound": {
                    key: bench.mean([b[key] for b, _ in rows])
                    for key in ("bookings", "covers", "moves", "undecided")
                },
                "engine_repack": {
                    "bookings": bench.mean([m["accepted"] for _, m in rows]),
                    "covers": bench.mean([m["covers"] for _, m in rows]),
                },
                "covers_vs_capped_bound": round(ratio, 4),
            }
            if worst is None or ratio < worst[1]:
                worst = (f"{name}/{load}", round(ratio, 4))
            print(f"{name} {load}% done", file=sys.stderr)
        shapes[name] = {"seeds": seeds, "loads": cells}
    document = {
        "benchmark": "seatflow.engine, against an online bound of at most --cap moves a request",
        "cap": args.cap,
        "shapes": shapes,
        "engine_repack_covers_ge_99pct_of_capped_bound": {
            "verdict": "met" if worst is not None and worst[1] >= 0.99 else "not met",
            "worst": worst,
        },
        "seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(document, indent=2)
    print(text)
    out = bench.RESULTS / "engine-capped.json"
    out.write_text(text + "\n")
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
