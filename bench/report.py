"""The figures in bench/README.md (and the one table of docs/engine.md),
generated from the result files in bench/results/.

    python bench/report.py            # rewrite the generated parts
    python bench/report.py --check    # exit 1 when a document does not match the results

Each generated part sits between `<!-- report:NAME:start -->` and
`<!-- report:NAME:end -->` (NAME: engine, availability, pipeline in the README;
engine-summary in docs/engine.md); the rest is prose and stays as written.
The current results are one file per bench and floor shape:
`engine-<shape>-<N>seeds.json` (a shape in two such files is an error: delete
the older one), `availability-latest.json` and `pipeline-latest.json`.
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
    "engine_repack_first": "first attempt",
    "engine": "engine alone",
    "legacy": "legacy",
    "best_fit": "best fit",
}
LATENCY_NOTE = (
    "Per evening (means). Latency is wall clock per `search` call in ms; with re-packing:"
    " the first attempts of the pipeline's path, the deep retries apart:"
)


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
        out += ["", LATENCY_NOTE, ""]
        rows = []
        for load, cell in figures["loads"].items():
            repack, bound = cell["engine_repack"], cell["online_bound"]
            first, deep = repack["latency_ms"], repack["deep_retry_latency_ms"]
            rows.append([
                f"{load}%",
                ms(cell["engine"]["latency_ms"]["p95_ms"]),
                f"{ms(first['p95_ms'])} ({ms(repack['cpu_latency_ms']['p95_ms'])})",
                f"{num(repack['repack_exact'])} / {num(repack['repack_bounded'])}",
                f"{num(repack['deep_retries'])} ({num(repack['deep_seated'])})",
                ms(deep["p95_ms"]) if deep["samples"] else "-",
                f"{num(repack['moves'])} ({repack['most_moves']})",
                f"{num(bound['moves'])} ({num(bound['most_moves'])})",
                f"{num(bound['cpsat_unknown'])}",
            ])
        out += table(
            ["load", "search alone P95", "with re-packing P95 (CPU)",
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


# ---------------------------------------------------------------- docs/engine.md


def engine_summary_section(results: Path) -> list[str]:
    """docs/engine.md's one table: per shape, the pipeline's path and its parts."""
    rows = []
    for shape, name, figures, _ in engine_shapes(results):
        loads = figures["loads"]
        top = loads[max(loads, key=int)]

        def ratios(policy: str, loads: dict[str, Any] = loads) -> str:
            return " / ".join(f"{cell[policy]['covers_vs_bound']:.3f}" for cell in loads.values())

        repack = top["engine_repack"]
        rows.append([
            f"{shape} ({figures['tables']} tables)",
            ratios("engine_repack"),
            ratios("engine_repack_first"),
            ratios("engine"),
            ms(repack["latency_ms"]["p95_ms"]),
            f"{num(repack['deep_retries'])} ({num(repack['deep_seated'])})",
            str(max(cell["engine_repack"]["most_moves"] for cell in loads.values())),
        ])
    loads = "/".join(engine_shapes(results)[0][2]["loads"])
    return table(
        ["floor", f"engine + re-packing, covers vs online bound at {loads}%",
         "first attempt alone", "engine alone (no re-packing)",
         "with re-packing P95 ms, top load", "deep retries an evening, top load (seated)",
         "most moves for one request"],
        rows,
    )


# ---------------------------------------------------------------- documents

Section = Callable[[Path], list[str]]
README_SECTIONS: dict[str, Section] = {
    "engine": engine_section,
    "availability": availability_section,
    "pipeline": pipeline_section,
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
