"""The figures in bench/README.md (and the one table of docs/engine.md),
generated from the result files in bench/results/.

    python bench/report.py            # rewrite the generated parts
    python bench/report.py --check    # exit 1 when a document does not match the results

Each generated part sits between `<!-- report:NAME:start -->` and
`<!-- report:NAME:end -->` (NAME: engine, availability, pipeline, api in the README;
engine-summary in docs/engine.md); the rest is prose and stays as written.
The current results are one file per bench and floor shape:
`engine-<shape>-<N>seeds.json` (a shape in two such files is an error: delete
the older one), `availability-latest.json`, `pipeline-latest.json` and `api-latest.json`.
tests/pure/test_bench_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POLICY_NAMES = {
    "engine_repack": "engine + re-packing",
    "engine": "engine alone",
    "legacy": "legacy",
    "best_fit": "best fit",
}


def num(x: float) -> str:
    """A count or mean: at most one decimal, none when whole."""
    return f"{round(x, 1):g}"


def ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


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
        f" evenings a load (seeds {seeds[0]}-{seeds[-1]}), policies only (no yardsticks:"
        f" the online bound of one 60-table evening costs minutes), "
        f"{document['machine']['cpus']} CPUs. Per cell (floor x load), the mean over the"
        " evenings; over the cells, the mean and the worst:"),
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


# ---------------------------------------------------------------- availability


def availability_section(results: Path) -> list[str]:
    document = json.loads((results / "availability-latest.json").read_text())
    floor, engine = document["floor"], document["engine"]
    intro = (
        f"`bench/results/availability-latest.json`: `{floor['file']}`, {floor['tables']}"
        f" tables holding {floor['allocations']} allocations, {floor['service']},"
        f" {engine['start_times']} start times every {floor['slot_minutes']} minutes;"
        f" re-packing budget {engine['repack_steps_budget']:,} steps"
        f" (wall-clock safety stop {engine['safety_stop_ms'] or 'none'} ms);"
        f" {document['machine']['cpus']} CPUs."
        " Milliseconds for the whole evening:"
    )
    out = [intro, ""]
    rows = []
    for key, figures in engine.items():
        if not key.startswith("party_"):
            continue
        end = document.get("end_to_end", {}).get(key)
        rows.append([
            key.removeprefix("party_"),
            f"{figures['available_start_times']} / {figures['baseline']['available_start_times']}",
            f"{ms(figures['p50_ms'])} / {ms(figures['p95_ms'])}",
            ms(figures["baseline"]["p95_ms"]),
            f"{figures['speedup_p95_wall']:g}x",
            ms(end["p95_ms"]) if end else "-",
        ])
    out += table(
        ["party", "times offered (previous path)", "evaluation P50 / P95",
         "previous path P95", "speed-up at P95", "end to end P95 (PostgreSQL)"],
        rows,
    )
    out += [""]
    rows = [
        [f"`{name}`", str(t["target"]), str(t["measured"]), t["status"]]
        for name, t in document["targets"].items()
    ]
    return out + table(["target", "wanted", "measured", "verdict"], rows)


# ---------------------------------------------------------------- api


def api_section(results: Path) -> list[str]:
    document = json.loads((results / "api-latest.json").read_text())
    phases = {phase["phase"]: phase for phase in document["phases"]}
    hammer = phases["hammered"]["hammer"]
    loads = [x for phase in phases.values() for x in phase["load_average_1m"]]
    out = [
        f"`bench/results/api-latest.json`: {document['machine']['cpus']} CPUs, load average"
        f" {min(loads):g}-{max(loads):g} during the run; the hammering token's"
        f" {sum(hammer['statuses'].values()):,} requests: "
        + ", ".join(f"{n:,} x {code}" for code, n in hammer["statuses"].items())
        + f" ({hammer.get('api_cpu_ms_per_request', '-')} ms of the API process's CPU each).",
        "",
    ]
    rows = [
        [name, str(phase["bookings"]),
         f"{ms(phase['post_ms']['p50'])} / {ms(phase['post_ms']['p95'])}",
         (f"{ms(phase['created_to_confirmed_ms']['p50'])} / "
          f"{ms(phase['created_to_confirmed_ms']['p95'])}"),
         ", ".join(f"{k} {v:g}" for k, v in phase["cpu_share"].items() if v)]
        for name, phase in phases.items()
    ]
    out += table(["segments", "bookings", "POST P50 / P95", "created -> confirmed P50 / P95",
                  "share of a core"], rows)
    out += [""]
    rows = [[f"`{name}`", str(t["target"]), str(t["value"]), "met" if t["met"] else "NOT met"]
            for name, t in document["targets"].items()]
    return out + table(["target", "wanted", "measured", "verdict"], rows)


# ---------------------------------------------------------------- pipeline


def pipeline_section(results: Path) -> list[str]:
    document = json.loads((results / "pipeline-latest.json").read_text())
    runs = document["runs"]
    ceiling, burst = runs[0]["ceiling"], runs[0]["ceiling_burst_100"]
    mass, spread, one = runs[0]["throughput"], runs[0]["latency"], runs[0]["one_restaurant"]

    def p95(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda run: f"{run[key]['latency_seconds']['p95']:.2f}"

    def slots(run: dict[str, Any]) -> str:
        figures = run["throughput"]
        return f"{num(figures['slot_wait_ms']['p95'])} / {num(figures['slot_hold_ms']['p95'])}"

    scenarios: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (f"ceiling: {ceiling['workflows']} trivial workflows at once, per s",
         lambda run: num(run["ceiling"]["per_second"])),
        (f"{mass['bookings']} bookings over {mass['restaurants']} restaurants, per s",
         lambda run: num(run["throughput"]["per_second"])),
        ("ratio of the two", lambda run: f"{run['ratio']:.2f}"),
        (f"{spread['bookings']} at once over {spread['restaurants']} restaurants, P95 s",
         p95("latency")),
        (f"{burst['workflows']} trivial workflows at once, P95 s", p95("ceiling_burst_100")),
        (f"{one['bookings']} at once on one restaurant, max parallel {one['max_parallel']}, P95 s",
         p95("one_restaurant")),
        ("slot wait / hold P95 (throughput run), ms", slots),
    ]
    head = [
        "scenario",
        *(f"{r['worker_processes']} worker process{'es' * (r['worker_processes'] > 1)}"
          for r in runs),
    ]
    machine = document["machine"]
    quick = " (quick run)" if document["quick"] else ""
    intro = (
        f"`bench/results/pipeline-latest.json`: {machine['cpus']} CPUs, load average"
        f" {machine['load_average_at_end'][0]} at the end{quick}."
    )
    out = [
        intro,
        "",
        *table(head, [[label, *(cell(r) for r in runs)] for label, cell in scenarios]),
        "",
    ]
    rows = [
        [name.replace("_", " "), str(s["bookings"]), f"{s['rate_per_second']:g}/s",
         f"{s['latency_seconds']['p95']:.3f}"]
        for name, s in document["steady"].items()
    ]
    out += table(["steady arrivals", "bookings", "rate", "P95 s"], rows) + [""]
    rows = [
        [f"`{name}`", str(t.get("value", "-")), t.get("target", "-"),
         "met" if t["met"] else "NOT met"]
        for name, t in document["targets"].items()
    ]
    return out + table(["target", "measured", "wanted", "verdict"], rows)


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
        rows.append([
            f"generated family ({len(family['floors'])} floors)",
            "-",
            "-",
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


# ---------------------------------------------------------------- documents

Section = Callable[[Path], list[str]]
README_SECTIONS: dict[str, Section] = {
    "engine": engine_section,
    "availability": availability_section,
    "pipeline": pipeline_section,
    "api": api_section,
}
DESIGN_SECTIONS: dict[str, Section] = {"engine-summary": engine_summary_section}


def render(text: str, sections: dict[str, Section], results: Path) -> str:
    for name, section in sections.items():
        pattern = re.compile(
            rf"(<!-- report:{name}:start -->\n).*?(<!-- report:{name}:end -->)", re.DOTALL
        )
        found = pattern.search(text)
        if found is None:
            raise SystemExit(f"no <!-- report:{name}:start/end --> markers")
        body = "\n".join(section(results)) + "\n"
        text = text[: found.end(1)] + body + text[found.start(2) :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a document is stale")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--design", type=Path, default=HERE.parent / "docs" / "engine.md")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    stale = 0
    for path, sections in ((args.readme, README_SECTIONS), (args.design, DESIGN_SECTIONS)):
        current = path.read_text()
        wanted = render(current, sections, args.results)
        if wanted == current:
            continue
        if args.check:
            print(f"{path} does not match {args.results}: run python bench/report.py",
                  file=sys.stderr)
            stale = 1
        else:
            path.write_text(wanted)
            print(f"{path} rewritten", file=sys.stderr)
    return stale


if __name__ == "__main__":
    sys.exit(main())
