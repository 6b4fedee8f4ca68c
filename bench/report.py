"""The figures in bench/README.md, generated from the result files in bench/results/.

    python bench/report.py            # rewrite the generated parts of bench/README.md
    python bench/report.py --check    # exit 1 when bench/README.md does not match the results

Each generated part sits between `<!-- report:NAME:start -->` and
`<!-- report:NAME:end -->` (NAME: engine, availability, pipeline); the rest of
the README is prose and stays as written. The current results are one file per
bench and floor shape: `engine-<shape>-<N>seeds.json` (a shape in two such
files is an error: delete the older one), `availability-latest.json` and
`pipeline-latest.json`. tests/test_bench_readme.py runs the check.
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
    "engine_repack_first": "first attempt",
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
        seeds, machine = document["seeds"], document["machine"]
        zones = ", ".join(figures["zones"])
        run = (
            f"`bench/results/{name}`: {len(seeds)} evenings a load (seeds {seeds[0]}-{seeds[-1]}),"
            f" SCIP {document['solver_seconds']:g} s, {machine['cpus']} CPUs, load average"
            f" {machine['load_average_at_start'][0]} at the start. Covers of each policy as a"
            " share of the online bound (mean of the evenings' ratios):"
        )
        out += [
            f"#### {shape}: {figures['tables']} tables, {figures['seats']} seats (zones {zones})",
            "",
            run,
            "",
        ]
        rows = []
        for load, cell in figures["loads"].items():
            bound, best = cell["online_bound"], cell["optimum_covers"]
            rows.append(
                [f"{load}%", num(cell["requests"]), num(bound["covers"]),
                 f"{num(best['covers'])} ({best['proven']}/{len(seeds)})"]
                + [ratio(cell[p]["covers_vs_bound"]) for p in POLICY_NAMES]
            )
        out += table(
            ["load", "requests", "online bound covers", "offline optimum covers (proven)",
             *POLICY_NAMES.values()],
            rows,
        )
        out += ["", "Per evening (means); latency is wall clock per `search` call, in ms:", ""]
        rows = []
        for load, cell in figures["loads"].items():
            first, repack, bound = cell["engine_repack_first"], cell["engine_repack"], cell[
                "online_bound"
            ]
            deep = repack["deep_retry_latency_ms"]
            rows.append([
                f"{load}%",
                ms(cell["engine"]["latency_ms"]["p95_ms"]),
                f"{ms(first['latency_ms']['p95_ms'])} ({ms(first['cpu_latency_ms']['p95_ms'])})",
                f"{num(repack['repack_exact'])} / {num(repack['repack_bounded'])}",
                f"{num(repack['deep_retries'])} ({num(repack['deep_seated'])})",
                ms(deep["p95_ms"]) if deep["samples"] else "-",
                f"{num(repack['moves'])} ({repack['most_moves']})",
                f"{num(bound['moves'])} ({num(bound['most_moves'])})",
                f"{num(bound['cpsat_unknown'])}",
            ])
        out += table(
            ["load", "search alone P95", "first attempt P95 (CPU)",
             "re-packs exact / bounded", "deep retries (seated by them)", "deep retry P95",
             "moves (most for one request, any evening)",
             "online bound's moves (most for one request, mean)",
             "bound undecided (counted as refusals)"],
            rows,
        )
        out.append("")
    out += ["#### Targets", ""]
    rows = []
    for shape, _, _, document in shapes:
        for target, verdict in document["targets"].items():
            detail = ", ".join(
                f"{key} {value[0]}: {value[1]}" if isinstance(value, list) else f"{key} {value}"
                for key, value in verdict.items()
                if key != "verdict" and value not in (None, [])
            )
            rows.append([shape, f"`{target}`", verdict["verdict"], detail])
    return out + table(["shape", "target", "verdict", "detail"], rows)


# ---------------------------------------------------------------- availability


def availability_section(results: Path) -> list[str]:
    document = json.loads((results / "availability-latest.json").read_text())
    floor, engine = document["floor"], document["engine"]
    intro = (
        f"`bench/results/availability-latest.json`: `{floor['file']}`, {floor['tables']}"
        f" tables holding {floor['allocations']} allocations, {floor['service']},"
        f" {engine['start_times']} start times every {floor['slot_minutes']} minutes;"
        f" re-packing budget {engine['budget_ms']:g} ms; {document['machine']['cpus']} CPUs."
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


# ---------------------------------------------------------------- README

SECTIONS: dict[str, Callable[[Path], list[str]]] = {
    "engine": engine_section,
    "availability": availability_section,
    "pipeline": pipeline_section,
}


def render(readme: str, results: Path) -> str:
    for name, section in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- report:{name}:start -->\n).*?(<!-- report:{name}:end -->)", re.DOTALL
        )
        found = pattern.search(readme)
        if found is None:
            raise SystemExit(f"the README has no <!-- report:{name}:start/end --> markers")
        body = "\n".join(section(results)) + "\n"
        readme = readme[: found.end(1)] + body + readme[found.start(2) :]
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the README is stale")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    current = args.readme.read_text()
    wanted = render(current, args.results)
    if args.check:
        if wanted != current:
            print(f"{args.readme} does not match {args.results}: run python bench/report.py",
                  file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.readme.write_text(wanted)
        print(f"{args.readme} rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
