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
The engine's parts are rendered by report_engine.py; numbers and tables are
formatted by report_format.py. tests/pure/test_bench_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_engine import engine_section, engine_summary_section
from report_format import ms, num, table

HERE = Path(__file__).resolve().parent
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
        ("worker CPU per booking (100 over 10), ms",
         lambda run: num(run["latency"]["cpu_ms_per_booking"]["worker"])),
        ("worker CPU per workflow of a booking's shape with no work in it, ms",
         lambda run: (num(run["sdk_floor"]["worker_ms_one_task_three_local_activities"])
                      if "sdk_floor" in run else "-")),
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
