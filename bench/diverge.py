"""Where the engine alone and legacy part ways on an evening (docs/engine.md,
"Where the engine alone falls behind legacy"). Not part of the tests.

    python bench/diverge.py corner9 40 2            # one evening: shape, load, seed
    python bench/diverge.py family11 130 5 -v       # a family floor; -v: every divergent pick
    python bench/diverge.py corner9 40 2 --revert   # each divergent pick reverted alone
    python bench/diverge.py --mirror                # legacy with its ties mirrored, vs legacy
    python bench/diverge.py --mirror --family 20

One evening: both policies (`policies.py`: `engine`, the search without
re-packing; `legacy`, `quote_tables`) replay the requests in order, each on its
own floor. Printed: each request where the engine's pick differs from the one
legacy would make on the engine's floor, with the score term that decided it
(`overage`: the engine's plan has fewer empty seats; `demand`: the lookahead
tie-break; any other weighted term), and each request one policy seats and the
other refuses, with why the engine refused: `three tables held back` (beyond
`wide_plan_lead_minutes` a three-table plan was free) or `no plan free` (legacy's
first fit refuses it on the engine's floor too: earlier choices). `--revert`
replays the engine with legacy's pick forced at one divergent request at a time.

`--bound`: the pipeline (`policies.py`: `engine_repack`) against the online
re-packing bound (`yardsticks.online_bound`) on the given shape and load, for
each seed: every request the bound seats and the pipeline refuses, with what
would have seated it on the pipeline's own floor then
(`policies.refusal_cause`: one of the pipeline's rules lifted alone (the step
budget, the freeze window, the move cap, the empty-seat rule), the bound's
rules together, the repeat-move or zone rule lifted as well, or none: earlier
choices), and every request the pipeline seats and the bound refuses; counts
and covers per cause over the seeds.

    python bench/diverge.py --bound corner9 130        # seeds 1-5
    python bench/diverge.py --bound family16 40 -v     # -v: every such request

`--mirror`: legacy with the opposite table order among its equal first quotes
(the same size and tables) against legacy, every shape (and family floor), load
and seed: how many evenings a policy that differs from legacy only in its ties
seats fewer covers than legacy, beside the engine's count.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine import bound_limit
from policies import ALONE, simulate
from workload import SHAPES, Request, allocations_of, evening, family_floor, with_history
from yardsticks import online_bound

from seatflow.domain.planning import BookingRequest, Plan, RestaurantSnapshot
from seatflow.engine import quote_tables, search

LOADS = [40, 70, 100, 130, 170]
Tables = tuple[str, ...] | None
Pick = Callable[[RestaurantSnapshot, BookingRequest, datetime], Tables]
EVERY = replace(ALONE, max_plans=10_000)
NO_HOLD_BACK = replace(ALONE, wide_plan_lead_minutes=None)


def engine(snapshot: RestaurantSnapshot, request: BookingRequest, now: datetime) -> Tables:
    result = search(snapshot, request, ALONE, now=now)
    return result.plans[0].tables if result.plans else None


def legacy(snapshot: RestaurantSnapshot, request: BookingRequest, now: datetime) -> Tables:
    quotes = quote_tables(snapshot, request)
    return quotes[0].tables if quotes else None


def mirror(snapshot: RestaurantSnapshot, request: BookingRequest, now: datetime) -> Tables:
    """Legacy's first fit, the last of its equal first quotes instead of the first."""
    quotes = quote_tables(snapshot, request)
    if not quotes:
        return None
    first = quotes[0]
    return max(
        q.tables for q in quotes
        if len(q.tables) == len(first.tables) and q.capacity == first.capacity
    )


def setup(shape: str, load: int, seed: int) -> tuple[RestaurantSnapshot, list[Request]]:
    """The floor (with its demand profile) and the evening's requests, as the bench has them."""
    if shape.startswith("family"):
        floor, mix = family_floor(int(shape.removeprefix("family").split("-")[0]))
        return with_history(floor, load, mix), evening(floor, load, seed, mix)
    floor = with_history(SHAPES[shape](), load)
    return floor, evening(floor, load, seed)


def replay(
    floor: RestaurantSnapshot, requests: list[Request], pick: Pick,
    forced: dict[str, Tables] | None = None,
) -> tuple[list[Tables], int]:
    """Each request's tables (None: refused) and the evening's covers."""
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    picks: list[Tables] = []
    for r in requests:
        if forced and r.booking_id in forced:
            tables = forced[r.booking_id]
        else:
            tables = pick(allocations_of(floor, held, by_id), r.booking(), r.asked_at)
        picks.append(tables)
        if tables is not None:
            held[r.booking_id] = tables
    return picks, sum(by_id[b].party for b in held)


def floors_along(
    floor: RestaurantSnapshot, requests: list[Request], picks: list[Tables]
) -> Iterator[tuple[Request, Tables, RestaurantSnapshot]]:
    """Each request with its pick and the floor it was picked on."""
    by_id = {r.booking_id: r for r in requests}
    held: dict[str, tuple[str, ...]] = {}
    for r, tables in zip(requests, picks, strict=True):
        yield r, tables, allocations_of(floor, held, by_id)
        if tables is not None:
            held[r.booking_id] = tables


def decided_by(top: Plan, other: Plan) -> str:
    """The weighted score term that most put `top` before `other`."""
    weights = vars(ALONE.weights)
    gaps = {k: weights[k] * (other.breakdown[k] - top.breakdown[k]) for k in weights}
    term, gap = max(gaps.items(), key=lambda kv: kv[1])
    return term if gap > 0 else "ties (table ids)"


def show(tables: Tables) -> str:
    return "-" if tables is None else "+".join(tables)


def trace(shape: str, load: int, seed: int, verbose: bool, revert: bool) -> None:
    floor, requests = setup(shape, load, seed)
    ours, covers = replay(floor, requests, engine)
    theirs, legacy_covers = replay(floor, requests, legacy)
    print(f"{shape}/{load} seed {seed}: {len(requests)} requests, engine alone {covers} "
          f"covers, legacy {legacy_covers} ({covers - legacy_covers:+d})")
    diverging: dict[str, Tables] = {}
    terms: dict[str, int] = {}
    for r, tables, snapshot in floors_along(floor, requests, ours):
        request = r.booking()
        theirs_here = legacy(snapshot, request, r.asked_at)
        if theirs_here == tables:
            continue
        diverging[r.booking_id] = theirs_here
        plans = search(snapshot, request, EVERY, now=r.asked_at).plans
        other = next((p for p in plans if p.tables == theirs_here), None)
        why = decided_by(plans[0], other) if plans and other else "legacy has no plan"
        terms[why] = terms.get(why, 0) + 1
        if verbose:
            ahead = (r.start - r.asked_at).total_seconds() / 3600
            print(f"  {r.booking_id} party {r.party} {r.start:%H:%M}-{r.end:%H:%M}, "
                  f"{ahead:.1f} h ahead: engine {show(tables)}, legacy {show(theirs_here)} "
                  f"({why})")
    print(f"picks that differ from legacy's on the engine's floor: {len(diverging)}, "
          f"decided by {terms}")
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
    if first is not None:
        r = requests[first]
        print(f"first divergence of the held plans: {r.booking_id} (party {r.party}): "
              f"engine {show(ours[first])}, legacy {show(theirs[first])}")
    print("seated by one, refused by the other:")
    for (r, tables, snapshot), their in zip(floors_along(floor, requests, ours), theirs,
                                            strict=True):
        if (tables is None) == (their is None):
            continue
        if tables is not None:
            print(f"  {r.booking_id} party {r.party} {r.start:%H:%M}: legacy refuses")
            continue
        request = r.booking()
        if search(snapshot, request, NO_HOLD_BACK, now=r.asked_at).plans:
            why = "three tables held back (a three-table plan is free)"
        elif legacy(snapshot, request, r.asked_at) is not None:
            why = "a plan is free (unexpected)"
        else:
            why = "no plan free (legacy's first fit refuses it here too)"
        print(f"  {r.booking_id} party {r.party} {r.start:%H:%M}: engine refuses: {why}")
    if revert:
        deltas = [replay(floor, requests, engine, {b: t})[1] - covers
                  for b, t in diverging.items()]
        gap = legacy_covers - covers
        print(f"legacy's pick forced at one divergent request at a time: {len(deltas)} replays, "
              f"{sum(d >= gap for d in deltas)} reach legacy's covers, "
              f"{sum(d == 0 for d in deltas)} change nothing, {sum(d < 0 for d in deltas)} lose; "
              f"deltas {sorted(deltas)}")


def against_bound(shape: str, load: int, seeds: list[int], verbose: bool) -> dict[str, Any]:
    """The pipeline against the online bound on `shape` at `load`, per seed and
    in all: covers, and the requests one seats and the other refuses, the
    pipeline's refusals by cause (`policies.refusal_cause`)."""
    lost: dict[str, list[int]] = {}  # cause -> [requests, covers]
    gained = [0, 0]
    evenings = []
    for seed in seeds:
        floor, requests = setup(shape, load, seed)
        ours = simulate(floor, requests, "engine_repack", attribute=True)
        theirs: dict[str, tuple[str, ...]] = {}
        bound = online_bound(floor, requests, bound_limit(False), keep=theirs)
        line = {"seed": seed, "pipeline": ours["covers"], "bound": bound["covers"],
                "lost": 0, "gained": 0}
        for r in requests:
            if r.booking_id in theirs and r.booking_id not in ours["held"]:
                why = ours["refusal_causes"][r.booking_id]
                counts = lost.setdefault(why, [0, 0])
                counts[0] += 1
                counts[1] += r.party
                line["lost"] += r.party
                if verbose:
                    ahead = (r.start - r.asked_at).total_seconds() / 3600
                    print(f"  seed {seed} {r.booking_id} party {r.party} "
                          f"{r.start:%H:%M}-{r.end:%H:%M}, {ahead:.1f} h ahead: "
                          f"bound seats it, the pipeline refuses ({why})")
            elif r.booking_id in ours["held"] and r.booking_id not in theirs:
                gained[0] += 1
                gained[1] += r.party
                line["gained"] += r.party
        evenings.append(line)
        print(line, flush=True)
    total = {
        "cell": f"{shape}/{load}",
        "seeds": seeds,
        "pipeline_covers": sum(e["pipeline"] for e in evenings),
        "bound_covers": sum(e["bound"] for e in evenings),
        "bound_seats_pipeline_refuses": {
            why: {"requests": n, "covers": c} for why, (n, c) in sorted(lost.items())
        },
        "pipeline_seats_bound_refuses": {"requests": gained[0], "covers": gained[1]},
    }
    print(json.dumps(total), flush=True)
    return total


def mirrored(family: int, seeds: list[int]) -> None:
    names = [*SHAPES] + [f"family{i}" for i in range(1, family + 1)]
    for name in names:
        counts = {"evenings": 0, "engine_behind": 0, "mirror_behind": 0, "mirror_ahead": 0}
        worst = {"engine": 0, "mirror": 0}
        for load in LOADS:
            for seed in seeds:
                floor, requests = setup(name, load, seed)
                base = replay(floor, requests, legacy)[1]
                ours = replay(floor, requests, engine)[1] - base
                theirs = replay(floor, requests, mirror)[1] - base
                counts["evenings"] += 1
                counts["engine_behind"] += ours < 0
                counts["mirror_behind"] += theirs < 0
                counts["mirror_ahead"] += theirs > 0
                worst = {"engine": min(worst["engine"], ours),
                         "mirror": min(worst["mirror"], theirs)}
        print(name, counts, "worst", worst, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("evening", nargs="*", help="shape load seed")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--revert", action="store_true")
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--bound", action="store_true", help="shape load: pipeline vs bound")
    parser.add_argument("--family", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.mirror:
        mirrored(args.family, list(range(1, args.seeds + 1)))
        return
    if args.bound:
        if len(args.evening) != 2:
            parser.error("--bound takes a shape and a load")
        against_bound(args.evening[0], int(args.evening[1]),
                      list(range(1, args.seeds + 1)), args.verbose)
        return
    if len(args.evening) != 3:
        parser.error("give a shape, a load and a seed (or --mirror)")
    shape, load, seed = args.evening
    trace(shape, int(load), int(seed), args.verbose, args.revert)


if __name__ == "__main__":
    main()
