"""The engine bench's parts of the documents: bench/README.md's engine
section (per shape, the family) and docs/engine.md's one table, from the
`engine-<shape>-<N>seeds.json` results (bench/report.py writes them in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report_format import ms, num, ratio, table

POLICY_NAMES = {
    "engine_repack": "engine + re-packing",
    "engine": "engine alone",
    "legacy": "legacy",
    "best_fit": "best fit",
}


# ---------------------------------------------------------------- engine


def engine_shapes(results: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(shape, file name, the shape's figures, the whole document), smallest floor first."""
    found: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {}
    for path in sorted(results.glob("engine-*-*seeds.json")):
        document = json.loads(path.read_text())
        for shape, figures in document["shapes"].items():
            if shape in found:
                raise SystemExit(
                    f"{shape} is in both {found[shape][1]} and {path.name}: "
                    "keep one current result file per shape"
                )
            found[shape] = (shape, path.name, figures, document)
    return sorted(found.values(), key=lambda entry: (entry[2]["tables"], entry[0]))


def engine_section(results: Path) -> list[str]:
    shapes = engine_shapes(results)
    if not shapes:
        raise SystemExit(f"no engine-<shape>-<N>seeds.json in {results}")
    out: list[str] = []
    for shape, name, figures, document in shapes:
        out += shape_tables(shape, name, figures, document)
    for name, document in engine_families(results):
        out += family_tables(name, document)
    out += ["#### Targets", ""]
    rows = []
    for shape, _, _, document in shapes:
        rows += target_rows(shape, document["targets"])
    for name, document in engine_families(results):
        rows += target_rows(
            "family", {k: v for k, v in document["targets"].items() if k.startswith("family")}
        )
    return out + table(["shape", "target", "verdict", "detail"], rows)


def target_rows(shape: str, targets: dict[str, Any]) -> list[list[str]]:
    rows = []
    for target, verdict in targets.items():
        if shape != "family" and target.startswith("family"):
            continue
        rows.append([shape, f"`{target}`", verdict["verdict"], detail(verdict)])
    return rows


def detail(verdict: dict[str, Any]) -> str:
    """A target's figures in one cell: a long list is cut after three entries."""
    parts = []
    for key, value in verdict.items():
        if key == "verdict" or value in (None, []):
            continue
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int | float):
            parts.append(f"{key} {value[0]}: {value[1]}")
        elif isinstance(value, list):
            more = f"; {len(value)} in all" if len(value) > 3 else ""
            parts.append(f"{key}: {'; '.join(map(str, value[:3]))}{more}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts).replace("|", "/")


def shape_tables(
    shape: str, name: str, figures: dict[str, Any], document: dict[str, Any]
) -> list[str]:
    seeds, machine = document["seeds"], document["machine"]
    zones = ", ".join(figures["zones"])
    loads = figures["loads"]
    bounded = all("online_bound" in cell for cell in loads.values())
    what = (
        "Covers of each policy as a share of the online bound's (mean of the evenings'"
        " ratios); the bound's covers are those of the requests it decided, and the requests"
        " it left undecided are counted beside them:"
        if bounded
        else "No yardsticks in this run (`--no-yardsticks`): covers of each policy, mean"
        " an evening:"
    )
    solver = f" SCIP {document['solver_seconds']:g} s," if bounded else ""
    out = [
        f"#### {shape}: {figures['tables']} tables, {figures['seats']} seats (zones {zones})",
        "",
        (f"`bench/results/{name}`: {len(seeds)} evenings a load (seeds {seeds[0]}-{seeds[-1]}),"
        f"{solver} {machine['cpus']} CPUs, load average"
        f" {machine['load_average_at_start'][0]} at the start. {what}"),
        "",
    ]
    rows = []
    for load, cell in loads.items():
        row = [f"{load}%", num(cell["requests"])]
        if bounded:
            bound, best = cell["online_bound"], cell["optimum_covers"]
            row += [
                (f"{num(bound['covers'])} ({num(bound['undecided'])} /"
                f" {num(bound['undecided_covers'])})"),
                f"{num(best['covers'])} ({best['proven']}/{len(seeds)})",
            ]
            row += [ratio(cell[p]["covers_vs_bound"]) for p in POLICY_NAMES]
        else:
            row += [num(cell[p]["covers"]) for p in POLICY_NAMES]
        rows.append(row)
    head = ["load", "requests"]
    if bounded:
        head += ["online bound covers (undecided requests / their covers)",
                 "offline optimum covers (proven)"]
    out += table([*head, *POLICY_NAMES.values()], rows)
    out += ["", MOVES_NOTE, ""]
    rows = []
    for load, cell in loads.items():
        repack = cell["engine_repack"]
        rows.append([
            f"{load}%",
            f"{repack['moves_per_seated']:.2f}",
            num(repack["zone_changes"]),
            num(repack["repeat_moves"]),
            f"{repack['most_moves']} / {repack['most_moves_of_one_booking']}",
            f"{num(repack['repack_exact'])} / {num(repack['repack_bounded'])}",
            ms(cell["engine"]["latency_ms"]["p95_ms"]),
            f"{ms(repack['cpu_latency_ms']['p95_ms'])} ({ms(repack['latency_ms']['p95_ms'])})",
            rerun(cell.get("rerun"), repack),
        ])
    out += table(
        ["load", "moves per seated booking", "zone changes", "repeat moves",
         "most moves for one request / of one booking", "re-packs exact / bounded",
         "search alone P95", "with re-packing CPU P95 (wall)", "re-run"],
        rows,
    )
    return [*out, ""]


MOVES_NOTE = (
    "Engine + re-packing, per evening (means): moves, zone changes (a move to another zone)"
    " and repeat moves (a move of a booking moved before); re-packs the exact search decided"
    " and those its steps left to the bounded search. Latency in ms per `search` call."
    " Re-run: the pipeline's path on the first seed's evening again, the same tables? (and"
    " the searches a wall-clock safety stop decided an evening, when any)"
)


def rerun(again: dict[str, Any] | None, repack: dict[str, Any]) -> str:
    """The re-run's answer, and the searches a wall-clock safety stop decided."""
    same = "-" if again is None else "same" if again["same"] else (
        f"{again['covers']} then {again['again']} covers"
    )
    stops = repack["safety_stops"]
    return f"{same} ({num(stops)} safety stops)" if stops else same


def engine_families(results: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(results.glob("engine-*-*seeds.json")):
        document = json.loads(path.read_text())
        if "family" in document:
            found.append((path.name, document))
    return found


def family_tables(name: str, document: dict[str, Any]) -> list[str]:
    family = document["family"]
    seeds = family["seeds"]
    floors = family["floors"]
    tables = [f["tables"] for f in floors.values()]
    out = [
        f"#### Generated family: {len(floors)} floors, {min(tables)}-{max(tables)} tables",
        "",
        (f"`bench/results/{name}`: `workload.family_floor` 1-{len(floors)}, {len(seeds)}"
        f" evenings a load (seeds {seeds[0]}-{seeds[-1]}), the policies"
        + (" and the online bound (not the offline optima)" if "online_bound" in family
           else " only (no yardsticks)")
        + f", {document['machine']['cpus']} CPUs. Per cell (floor x load), the mean over"
        " the evenings; over the cells, the mean and the worst:"),
        "",
    ]
    rows = []
    versus = family.get("engine_vs_legacy")
    if versus:
        rows.append([
            "engine alone vs legacy, covers",
            f"{versus['mean']:+.1%} ({versus['mean_at_100_170']:+.1%} at 100-170%)",
            f"{versus['worst'][1]:+.1%} ({versus['worst'][0]})",
        ])
        high = sum(int(load) >= 100 for f in family["floors"].values() for load in f["loads"])
        rows.append([
            "cells short of legacy + 2% at 100-170% (of)",
            f"{versus['cells_short_of_2pct_at_100_170']} ({high})", "-",
        ])
        rows.append([
            "cells where the engine is behind legacy on some evening",
            str(len(versus["behind_legacy"])), "-",
        ])
    moves = family.get("engine_repack")
    if moves and "covers_vs_bound" in moves:
        versus_bound = moves["covers_vs_bound"]
        rows.append([
            "engine + re-packing vs decided online bound, covers",
            ratio(versus_bound["mean"]),
            f"{ratio(versus_bound['worst'][1])} ({versus_bound['worst'][0]})",
        ])
        rows.append([
            "cells under 0.99 of the bound / requests the bound left undecided",
            f"{versus_bound['cells_under_99pct']} / {num(family['online_bound']['undecided'])}",
            "-",
        ])
    if moves:
        rows.append([
            "engine + re-packing: moves per seated booking",
            f"{moves['moves_per_seated']['mean']:.3f}",
            (f"{moves['moves_per_seated']['worst'][1]:.3f}"
             f" ({moves['moves_per_seated']['worst'][0]})"),
        ])
        rows.append([
            "engine + re-packing: zone changes / repeat moves an evening",
            f"{num(moves['zone_changes'])} / {num(moves['repeat_moves'])}", "-",
        ])
        grouped = moves.get("moves_within_zone_group")
        if grouped:
            rows.append([
                (f"engine + re-packing: moves between zones declared equivalent an evening"
                 f" ({grouped['floors']} floors declare a group; their cells)"),
                f"{grouped['mean']:.2f}", f"{num(grouped['worst'][1])} ({grouped['worst'][0]})",
            ])
    out += table([f"{family['cells']} cells", "mean", "worst cell"], rows)
    return [*out, ""]



# ---------------------------------------------------------------- docs/engine.md


def engine_summary_section(results: Path) -> list[str]:
    """docs/engine.md's one table: per shape (and the generated family), the
    pipeline's path against the bound, the engine alone against legacy, moves
    as guests see them and the attempt's CPU."""
    rows = []
    shapes = engine_shapes(results)
    for shape, _, figures, _ in shapes:
        cells = figures["loads"].values()
        repack = [cell["engine_repack"] for cell in cells]
        bounded = all("online_bound" in cell for cell in cells)
        rows.append([
            f"{shape} ({figures['tables']} tables)",
            " / ".join(ratio(r["covers_vs_bound"]) for r in repack) if bounded else "-",
            " / ".join(num(c["online_bound"]["undecided"]) for c in cells) if bounded else "-",
            " / ".join(versus_legacy(c) for c in cells),
            f"{max(r['moves_per_seated'] for r in repack):.2f}",
            (f"{num(max(r['zone_changes'] for r in repack))} /"
            f" {num(max(r['repeat_moves'] for r in repack))}"),
            ms(max(r["cpu_latency_ms"]["p95_ms"] for r in repack)),
        ])
    for _, document in engine_families(results):
        family = document["family"]
        versus, repack = family.get("engine_vs_legacy"), family.get("engine_repack")
        bound = repack.get("covers_vs_bound") if repack else None
        rows.append([
            f"generated family ({len(family['floors'])} floors)",
            (f"mean {ratio(bound['mean'])}, worst cell {ratio(bound['worst'][1])};"
             f" {bound['cells_under_99pct']} cells under 0.99") if bound else "-",
            num(family["online_bound"]["undecided"]) + " in all" if bound else "-",
            (f"mean {versus['mean']:+.1%} ({versus['mean_at_100_170']:+.1%} at 100-170%),"
             f" worst cell {versus['worst'][1]:+.1%};"
             f" {versus['cells_short_of_2pct_at_100_170']} cells at 100-170% short of +2%,"
             f" {len(versus['behind_legacy'])} with an evening behind") if versus
            else "-",
            f"{repack['moves_per_seated']['worst'][1]:.2f}" if repack else "-",
            f"{num(repack['zone_changes'])} / {num(repack['repeat_moves'])}" if repack else "-",
            "-",
        ])
    loads = "/".join(shapes[0][2]["loads"])
    return table(
        ["floor", f"engine + re-packing, covers vs decided online bound at {loads}%",
         "bound undecided an evening", "engine alone vs legacy, covers",
         "moves per seated booking (worst load)",
         "zone changes / repeat moves an evening (worst load)",
         "with re-packing CPU P95 ms (worst load)"],
        rows,
    )


def versus_legacy(cell: dict[str, Any]) -> str:
    """The engine alone's covers against legacy's, and the evenings it seated
    fewer on, when any."""
    legacy = cell["legacy"]["covers"]
    if not legacy:
        return "-"
    behind = sum(
        e < g for e, g in zip(cell["engine"]["covers_per_evening"],
                              cell["legacy"]["covers_per_evening"], strict=True)
    )
    gain = f"{cell['engine']['covers'] / legacy - 1:+.1%}"
    return f"{gain} ({behind} behind)" if behind else gain
