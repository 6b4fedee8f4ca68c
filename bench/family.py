"""The engine benchmark's generated family (bench/engine.py --family N): the
policies on N generated floors (`workload.family_floor`: movable grids, chained
2-top banquettes, bar stools and high-tops, fixed booths, 2-5 zones, their own
party mix), every load, several seeds, and the online re-packing bound of
each evening (`yardsticks.online_bound`; not the offline optima, whose SCIP
solves are what is slow on the big floors), unless yardsticks are off.

Per cell (floor x load): the mean over seeds of each policy's covers and moves,
the engine's covers against legacy's, and with the bound each policy's covers
against it; the summary gives the mean and the worst cell, and `targets.py`
checks the shapes' bound target on the family's cells.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from policies import simulate
from targets import LEGACY_MARGIN, RATIO
from workload import evening, family_floor, with_history
from yardsticks import bound_summary, cached_yardstick, mean, online_bound

FAMILY_POLICIES = ["engine_repack", "engine", "legacy"]
# the online bound of each family cell (yardsticks.bound_summary)
FAMILY_BOUND_FIELDS = (
    "covers", "undecided", "undecided_covers", "cpsat_most_seconds", "cpu_seconds",
    "cached", "cached_other_code",
)


def _cell(rows: dict[str, list[dict[str, Any]]], bounds: list[dict[str, Any]]) -> dict[str, Any]:
    cell: dict[str, Any] = {}
    if bounds:
        cell["online_bound"] = bound_summary(bounds, FAMILY_BOUND_FIELDS)
    for policy, runs in rows.items():
        cell[policy] = {
            "covers": mean([r["covers"] for r in runs]),
            "bookings": mean([r["accepted"] for r in runs]),
            "covers_per_evening": [r["covers"] for r in runs],
            "moves_per_seated": mean([r["moves_per_seated"] for r in runs]),
            "zone_changes": mean([r["zone_changes"] for r in runs]),
            "repeat_moves": mean([r["repeat_moves"] for r in runs]),
            "moves_within_zone_group": mean([r["moves_within_zone_group"] for r in runs]),
            "most_moves": max(r["most_moves"] for r in runs),
        }
        if bounds:  # mean over seeds of the evening's ratio, as for the shapes
            cell[policy]["covers_vs_bound"] = mean([
                r["covers"] / max(1, b["covers"]) for r, b in zip(runs, bounds, strict=True)])
    if "engine" in rows and "legacy" in rows:
        legacy = cell["legacy"]["covers"]
        cell["engine_vs_legacy"] = round(cell["engine"]["covers"] / legacy - 1, 4) if legacy else 0
    return cell


def bench_family(
    count: int, loads: list[int], seeds: list[int], policies: list[str],
    bound_seconds: float | None = None, cache: Path | None = None,
) -> dict[str, Any]:
    """The policies on floors 1-`count`, and with `bound_seconds` the online
    bound of each evening (kept in `cache`, `yardsticks.cached_yardstick`)."""
    floors: dict[str, Any] = {}
    for index in range(1, count + 1):
        floor, mix = family_floor(index)
        cells: dict[str, Any] = {}
        for load in loads:
            rows: dict[str, list[dict[str, Any]]] = {p: [] for p in policies}
            bounds: list[dict[str, Any]] = []
            profiled = with_history(floor, load, mix)
            for seed in seeds:
                requests = evening(floor, load, seed, mix)
                for policy in policies:
                    rows[policy].append(simulate(profiled, requests, policy))
                if bound_seconds is not None:
                    bounds.append(cached_yardstick(
                        cache, "bound", profiled, requests, bound_seconds,
                        lambda r=requests, f=profiled: online_bound(f, r, bound_seconds)))
            cells[str(load)] = _cell(rows, bounds)
        floors[floor.restaurant_id] = {
            "tables": len(floor.tables),
            "seats": sum(t.capacity for t in floor.tables),
            "zones": sorted({t.zone for t in floor.tables}),
            "equivalent_zones": [list(group) for group in floor.zone_groups],
            "loads": cells,
        }
        print(f"family {floor.restaurant_id} done", file=sys.stderr)
    return {"policies": policies, "seeds": seeds, "floors": floors, **summary(floors, policies)}


def summary(floors: dict[str, Any], policies: list[str]) -> dict[str, Any]:
    cells = [
        (f"{name}/{load}", int(load), cell)
        for name, floor in floors.items()
        for load, cell in floor["loads"].items()
    ]
    out: dict[str, Any] = {"cells": len(cells)}
    if "engine" in policies and "legacy" in policies:
        gains = {where: cell["engine_vs_legacy"] for where, _, cell in cells}
        high = {where: gains[where] for where, load, _ in cells if load >= 100}
        behind = []
        for where, _, cell in cells:
            pairs = zip(cell["engine"]["covers_per_evening"],
                        cell["legacy"]["covers_per_evening"], strict=True)
            count = sum(e < g for e, g in pairs)
            if count:
                behind.append(f"{where}: {count} evening(s)")
        out["engine_vs_legacy"] = {
            "mean": mean(list(gains.values())),
            "mean_at_100_170": mean(list(high.values())),
            "worst": min(gains.items(), key=lambda kv: kv[1]),
            "cells_short_of_2pct_at_100_170": sum(g < LEGACY_MARGIN for g in high.values()),
            "behind_legacy": behind,
        }
    bounded = [(where, cell) for where, _, cell in cells if "online_bound" in cell]
    if bounded:
        out["online_bound"] = {
            "undecided": sum(cell["online_bound"]["undecided"] for _, cell in bounded),
            "cpsat_most_seconds": max(c["online_bound"]["cpsat_most_seconds"] for _, c in bounded),
            "cpu_seconds": mean([cell["online_bound"]["cpu_seconds"] for _, cell in bounded]),
        }
    if "engine_repack" in policies:
        moves = {where: cell["engine_repack"]["moves_per_seated"] for where, _, cell in cells}
        out["engine_repack"] = {
            "moves_per_seated": {"mean": mean(list(moves.values())),
                                 "worst": max(moves.items(), key=lambda kv: kv[1])},
            "zone_changes": mean([c["engine_repack"]["zone_changes"] for _, _, c in cells]),
            "repeat_moves": mean([c["engine_repack"]["repeat_moves"] for _, _, c in cells]),
        }
        if bounded:
            versus = {where: cell["engine_repack"]["covers_vs_bound"] for where, cell in bounded}
            out["engine_repack"]["covers_vs_bound"] = {
                "mean": mean(list(versus.values())),
                "worst": min(versus.items(), key=lambda kv: kv[1]),
                "cells_under_99pct": sum(v < RATIO for v in versus.values()),
            }
        # the floors declaring zones equivalent: moves between the zones of a
        # group (no zone change to a guest), an evening, per cell of those floors
        grouped = {
            f"{name}/{load}": cell["engine_repack"]["moves_within_zone_group"]
            for name, floor in floors.items() if floor.get("equivalent_zones")
            for load, cell in floor["loads"].items()
        }
        if grouped:
            out["engine_repack"]["moves_within_zone_group"] = {
                "floors": sum(bool(f.get("equivalent_zones")) for f in floors.values()),
                "mean": mean(list(grouped.values())),
                "worst": max(grouped.items(), key=lambda kv: kv[1]),
            }
    return out
