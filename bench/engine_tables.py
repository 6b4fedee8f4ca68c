"""Markdown tables of an engine benchmark result (for docs/engine.md).

python bench/engine_tables.py bench/results/engine-bistro62-quick.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

POLICIES = [
    ("engine_repack", "engine + re-packing"),
    ("engine", "engine"),
    ("legacy", "legacy"),
    ("best_fit", "best fit"),
]


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cell(entry: dict[str, Any], yardsticks: bool) -> str:
    text = f"{entry['bookings']:g} / {entry['covers']:g}"
    if yardsticks:
        text += (
            f" (bound {_ratio(entry['bookings_vs_bound'])} / {_ratio(entry['covers_vs_bound'])};"
            f" opt {_ratio(entry['bookings_vs_optimum'])} / {_ratio(entry['covers_vs_optimum'])})"
        )
    return text


def shape_tables(name: str, shape: dict[str, Any]) -> str:
    loads = shape["loads"]
    yardsticks = "online_bound" in next(iter(loads.values()))
    head = ["load", "requests"]
    if yardsticks:
        head += [
            "offline optimum bookings / covers (proven; SCIP bound)",
            "online bound bookings / covers (undecided)",
        ]
    head += [label for _, label in POLICIES]
    lines = [
        (
            f"**{name}** ({shape['tables']} tables, {shape['seats']} seats, zones "
            f"{', '.join(shape['zones'])})"
        ),
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for load, cell in loads.items():
        row = [f"{load}%", f"{cell['requests']:g}"]
        if yardsticks:
            ob, oc, bound = cell["optimum_bookings"], cell["optimum_covers"], cell["online_bound"]
            row.append(
                f"{ob['bookings']:g} / {oc['covers']:g} ({ob['proven']:g}, {oc['proven']:g};"
                f" {ob['upper_bound']:g} / {oc['upper_bound']:g})"
            )
            row.append(
                f"{bound['bookings']:g} / {bound['covers']:g} ({bound['cpsat_unknown']:g} of"
                f" {bound['cpsat_solves']:g} CP-SAT)"
            )
        row += [_cell(cell[p], yardsticks) for p, _ in POLICIES]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        (
            "| load | search alone P50 / P95 / P99 wall (CPU) | with re-packing P50 / P95 / P99 wall"
            " (CPU) | re-packing calls P95 wall | re-packs exact / fell back |"
        ),
        "| --- | --- | --- | --- | --- |",
    ]
    for load, cell in loads.items():
        alone, repack = cell["engine"], cell["engine_repack"]

        def trio(entry: dict[str, Any], key: str) -> str:
            lat = entry[key]
            return f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f}"

        lines.append(
            f"| {load}% | {trio(alone, 'latency_ms')} ({trio(alone, 'cpu_latency_ms')})"
            f" | {trio(repack, 'latency_ms')} ({trio(repack, 'cpu_latency_ms')})"
            f" | {repack['repack_latency_ms']['p95_ms']:.2f}"
            f" | {repack['repack_exact']:g} / {repack['repack_bounded']:g} |"
        )
    first = next(iter(loads.values()))
    if "most_moves" in first["engine_repack"] and "online_bound" in first:
        lines += [
            "",
            (
                "| load | moves an evening: engine + re-packing (most for one request, any"
                " evening) | moves an evening: online bound (most for one request, mean of the"
                " evenings; requests seated by moving more than 3) | covers refused by"
                " engine + re-packing, by what would have seated them on the same state |"
            ),
            "| --- | --- | --- | --- |",
        ]
        for load, cell in loads.items():
            mine, bound = cell["engine_repack"], cell["online_bound"]
            causes = mine.get("refused_covers_by_cause")
            said = (
                ", ".join(f"{c} {v:.1f}" for c, v in causes.items()) if causes else "not measured"
            )
            lines.append(
                f"| {load}% | {mine['moves']:.1f} ({mine['most_moves']:g})"
                f" | {bound['moves']:.1f} ({bound['most_moves']:.1f};"
                f" {bound['repacks_over_3_moves']:.1f})"
                f" | {said} |"
            )
    return "\n".join(lines)


def main() -> int:
    for path in sys.argv[1:]:
        document = json.loads(Path(path).read_text())
        for name, shape in document["shapes"].items():
            print(shape_tables(name, shape))
            print()
        print("Targets:", json.dumps(document["targets"]))
        if "family" in document:
            family = document["family"]
            print(
                f"Family: {len(family['floors'])} floors, {family['cells']} cells; engine minus"
                f" legacy {family['engine_minus_legacy']}; behind: {family['engine_behind_legacy']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
