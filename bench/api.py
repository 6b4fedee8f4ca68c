"""API fair-use benchmark (issue 26): does one token hammering availability
slow another token's bookings? Prints one JSON document (stdout) and writes
it to bench/results/api-latest.json (`--quick`: api-quick.json, smaller).

One embedded stack (pgserver in a temporary directory, the Temporal dev
server), one worker process (`python -m worker`) and the API as its own
process (`python -m seatflow.api.server`, the deployed defaults: the rate
limit SEATFLOW_API_RATE_LIMIT and the CPU pool). Two restaurants of the
40-table sample floor: `hammered`, its evening filled with bookings, and
`booked`. Two tokens: `hammer` (host of `hammered`) and `booker` (host of
`booked`).

`booker` posts 400 bookings at 5/s (`POST .../bookings`) in sixteen segments
of 25, quiet and hammered in turn (ABBA: Q H H Q Q H H Q ...). During a hammered
segment, 8 clients of `hammer` (another process, so the measuring client is
not slowed by them) ask availability for the filled evening back to back,
without pausing on a 429. Quiet segments are the baseline, measured in the
same run and interleaved with the hammered ones, so that other work on the
box weighs on both alike. Per condition: POST latency (client side) and
created -> confirmed (bookings.created_at -> confirmed_at).

Targets: hammered POST P95 < 150 ms; hammered created -> confirmed P95 within
1.5x the quiet one; the hammering token gets 429s.

    python bench/api.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stack import ROOT, embedded_stack

RESULTS = ROOT / "bench" / "results"
FLOOR = ROOT / "examples" / "floorplans" / "harbour-kitchen.json"



def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="40 bookings per condition; writes results/api-quick.json")
    parser.add_argument("--hammer", metavar="JSON", type=json.loads,
                        help="internal: one hammering process, its url, token, "
                             "restaurant, day and windows (the bench starts it)")
    return parser.parse_args(argv)


ARGS = parse_args(sys.argv[1:])  # before any work: -h or a wrong flag runs nothing
QUICK = ARGS.quick
BOOKINGS = 40 if QUICK else 200  # per condition: a P95 of 200 moves less between runs
RATE = 5.0
HAMMER_CLIENTS = 8
# The hammering clients would run on their own machines; here they share the
# box with the API, so they run at a lower CPU priority, as a remote client's
# CPU would not be the API's (recorded in the JSON).
HAMMER_NICENESS = 10
BLOCK = 10 if QUICK else 25  # bookings in one segment of one condition
LEAD = 1.0  # s of hammering before a hammered segment's first booking
GAP = 2.0  # s after a segment's last booking: its confirmations drain
FILL = 34  # one evening of the hammered restaurant (loadtest's plan: all fit)


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([sys.executable, *argv], env=env, cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))], 1)


# -- the hammering clients (a separate process) ------------------------------


async def hammer(url: str, token: str, restaurant: str, day: str,
                 windows: list[tuple[float, float]], clients: int) -> dict[str, Any]:
    """Hammer availability inside each (start, end) window of the wall clock
    (time.time()), idle between them."""
    import httpx

    statuses: Counter[int] = Counter()
    ok_ms: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        async def one(stop: float) -> None:
            while time.time() < stop:
                t0 = time.perf_counter()
                r = await http.get(f"/v1/restaurants/{restaurant}/availability",
                                   params={"party": 4, "date": day},
                                   headers={"Authorization": f"Bearer {token}"})
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    ok_ms.append((time.perf_counter() - t0) * 1000)

        for begin, stop in windows:
            await asyncio.sleep(max(0.0, begin - time.time()))
            await asyncio.gather(*(one(stop) for _ in range(clients)))
    return {"clients": clients, "seconds": round(sum(b - a for a, b in windows), 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "ok_latency_ms": {"p50": pct(ok_ms, 0.5), "p95": pct(ok_ms, 0.95)}}


# -- the run ------------------------------------------------------------------


async def post_bookings(url: str, token: str, restaurant: str, planned: list[Any]
                        ) -> tuple[list[str], list[float], Counter[int]]:
    import httpx

    ids: list[str] = []
    post_ms: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        async def one(k: int, b: Any) -> None:
            await asyncio.sleep(max(0.0, started + k / RATE - time.perf_counter()))
            t0 = time.perf_counter()
            r = await http.post(f"/v1/restaurants/{restaurant}/bookings",
                                headers={"Authorization": f"Bearer {token}"},
                                json={"party_size": b.party_size, "start": b.start.isoformat(),
                                      "guest_name": f"Bench {k}",
                                      "require_availability": False})
            post_ms.append((time.perf_counter() - t0) * 1000)
            statuses[r.status_code] += 1
            if r.status_code in (200, 201):
                ids.append(r.json()["booking_id"])

        await asyncio.gather(*(one(k, b) for k, b in enumerate(planned)))
    return ids, post_ms, statuses


async def confirm_figures(engine: Any, ids: list[str], timeout: float = 120) -> dict[str, Any]:
    from sqlalchemy import text

    deadline = time.perf_counter() + timeout
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT assignment_state, EXTRACT(EPOCH FROM confirmed_at - created_at) * 1000 "
                "FROM bookings WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).all()
        settled = [r for r in rows if r[0] in ("confirmed", "manual_review", "failed",
                                                "cancelled")]
        if len(settled) == len(ids) or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.5)
    ms = [float(r[1]) for r in rows if r[0] == "confirmed" and r[1] is not None]
    return {"states": dict(Counter(str(r[0]) for r in rows)),
            "created_to_confirmed_ms": {"p50": pct(ms, 0.5), "p95": pct(ms, 0.95)}}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) so far of each named process, and of the API's
    pool workers (its children)."""
    import psutil

    out: dict[str, float] = {}
    def own(proc: Any) -> float:
        t = proc.cpu_times()
        return float(t.user + t.system)

    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            out[name] = own(proc)
            if name in ("api", "postgres"):  # the pool workers; the backends
                out[f"{name}_children"] = sum(own(c) for c in proc.children(recursive=True))
        except psutil.Error:
            out[name] = 0.0
    return out


def schedule(blocks: int, per_block: int) -> list[tuple[str, float]]:
    """The conditions of the segments and their start offsets (s): quiet and
    hammered blocks in ABBA order (Q H H Q Q H H Q ...), so that whatever
    else the box does drifts over both conditions alike."""
    pattern = ["quiet", "hammered", "hammered", "quiet"]
    span = LEAD + per_block / RATE + GAP
    return [(pattern[i % 4], i * span) for i in range(2 * blocks)]


async def interleaved(*, url: str, engine: Any, tokens: dict[str, str], planned: list[Any],
                      hammer_day: str, pids: dict[str, int]) -> dict[str, Any]:
    """Post `planned` in segments of BLOCK bookings at RATE/s, quiet and
    hammered in turn (`schedule`); the hammering process runs only during the
    hammered segments, from LEAD s before their first booking to just after
    their last. Figures are pooled per condition."""
    segments = schedule(len(planned) // (2 * BLOCK), BLOCK)
    t0 = time.time() + 4.0  # the hammering process has started by then
    windows = [(t0 + at, t0 + at + LEAD + BLOCK / RATE + 0.5)
               for cond, at in segments if cond == "hammered"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
        ["nice", "-n", str(HAMMER_NICENESS), sys.executable, __file__, "--hammer",
         json.dumps({"url": url, "token": tokens["hammer"], "restaurant": "hammered",
                     "day": hammer_day, "windows": windows})],
        stdout=subprocess.PIPE, cwd=ROOT)
    acc: dict[str, dict[str, Any]] = {
        c: {"ids": [], "post_ms": [], "statuses": Counter(), "cpu": Counter(), "wall": 0.0,
            "load": []} for c in ("quiet", "hammered")}
    for k, (cond, at) in enumerate(segments):
        await asyncio.sleep(max(0.0, t0 + at - time.time()))
        a = acc[cond]
        before, wall = cpu_seconds(pids), time.perf_counter()
        a["load"].append(round(os.getloadavg()[0], 2))
        await asyncio.sleep(LEAD)
        ids, post_ms, statuses = await post_bookings(
            url, tokens["booker"], "booked", planned[k * BLOCK:(k + 1) * BLOCK])
        await asyncio.sleep(max(0.0, t0 + at + LEAD + BLOCK / RATE + GAP - 0.2 - time.time()))
        after = cpu_seconds(pids)
        a["wall"] += time.perf_counter() - wall
        a["cpu"].update({key: after[key] - before.get(key, 0.0) for key in after})
        a["ids"] += ids
        a["post_ms"] += post_ms
        a["statuses"].update(statuses)
    out, _ = await asyncio.to_thread(proc.communicate)
    hammered = json.loads(out)
    result = {}
    for cond, a in acc.items():
        result[cond] = {
            "phase": cond, "bookings": len(a["post_ms"]), "segments": len(a["load"]),
            "rate_per_second": RATE,
            "post_statuses": {str(k): v for k, v in sorted(a["statuses"].items())},
            "post_ms": {"p50": pct(a["post_ms"], 0.5), "p95": pct(a["post_ms"], 0.95),
                        "max": round(max(a["post_ms"]), 1) if a["post_ms"] else None},
            **await confirm_figures(engine, a["ids"]),
            "load_average_1m": a["load"],
            # share of one core each process used during the condition's segments
            "cpu_share": {key: round(v / a["wall"], 3) for key, v in sorted(a["cpu"].items())},
            "hammer": hammered if cond == "hammered" else None}
    requests = sum(hammered["statuses"].values())
    if requests:  # what one hammering request costs the API's own process
        result["hammered"]["hammer"]["api_cpu_ms_per_request"] = round(
            1000 * acc["hammered"]["cpu"]["api"] / requests, 2)
    return result


async def main() -> dict[str, Any]:
    import httpx

    from seatflow.config import Settings
    from seatflow.logging import configure_logging
    from seatflow.ops.loadtest import ensure_restaurants, first_free_evening, plan_bookings
    from seatflow.storage.db import make_engine

    configure_logging("json", level="WARNING")
    tokens = {name: secrets.token_urlsafe(24) for name in ("hammer", "booker")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with embedded_stack("seatflow-bench-api-") as stack:
        base_env = stack.process_env(
            SEATFLOW_TASK_QUEUE="bench-api", SEATFLOW_API_ADDRESS=f"127.0.0.1:{port}",
            SEATFLOW_API_TOKENS=json.dumps([
                {"name": "hammer", "token": tokens["hammer"], "role": "host",
                 "restaurants": ["hammered"]},
                {"name": "booker", "token": tokens["booker"], "role": "host",
                 "restaurants": ["booked"]}]))
        for key in ("SEATFLOW_API_RATE_LIMIT", "SEATFLOW_API_CPU_WORKERS",
                    "SEATFLOW_API_CPU_WAIT_MS"):
            base_env.pop(key, None)  # the deployed defaults
        procs = [start(["-m", "worker"], base_env, stack.tmp / "worker.log"),
                 start(["-m", "seatflow.api.server"], base_env, stack.tmp / "api.log")]
        pids = {"worker": procs[0].pid, "api": procs[1].pid,
                "postgres": int((stack.pg_dir / "postmaster.pid").read_text().split()[0])}
        engine = make_engine(stack.database_url, pool_size=5, max_overflow=5)
        try:
            _, tz_name = await ensure_restaurants(engine, ["hammered", "booked"], FLOOR)
            tz = ZoneInfo(tz_name)
            async with httpx.AsyncClient(base_url=url, timeout=5) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise SystemExit("the API did not start: "
                                     f"{(stack.tmp / 'api.log').read_text()}")
            # the hammered evening, filled through the real pipeline (as host apps do)
            evening = await first_free_evening(engine, ["hammered"], tz)
            fill = plan_bookings(FILL, ["hammered"], evening, tz, random.Random(1))
            fill_ids, _, _ = await post_bookings(url, tokens["hammer"], "hammered", fill)
            await confirm_figures(engine, fill_ids)
            planned = plan_bookings(2 * BOOKINGS + 10, ["booked"],
                                    await first_free_evening(engine, ["booked"], tz), tz,
                                    random.Random(2))
            warm = planned[:10]
            await confirm_figures(engine, (await post_bookings(url, tokens["booker"], "booked",
                                                               warm))[0])
            phases = await interleaved(url=url, engine=engine, tokens=tokens,
                                       planned=planned[10:10 + 2 * BOOKINGS],
                                       hammer_day=evening.isoformat(), pids=pids)
            quiet, hammered = phases["quiet"], phases["hammered"]
        finally:
            await engine.dispose()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
    post95 = hammered["post_ms"]["p95"]
    q95 = quiet["created_to_confirmed_ms"]["p95"]
    h95 = hammered["created_to_confirmed_ms"]["p95"]
    ratio = None if not q95 or h95 is None else round(h95 / q95, 2)
    got_429 = int((hammered["hammer"] or {}).get("statuses", {}).get("429", 0))
    targets = {
        "hammered_post_p95_ms": {"value": post95, "target": "< 150",
                                 "met": post95 is not None and post95 < 150},
        "confirm_p95_ratio_hammered_to_quiet": {"value": ratio, "target": "<= 1.5",
                                                "met": ratio is not None and ratio <= 1.5},
        "hammer_token_got_429": {"value": got_429, "target": "> 0", "met": got_429 > 0},
    }
    return {
        "bench": "api", "quick": QUICK,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                    "shared": "the box is shared with other sessions' tests and benches"},
        "settings": {"rate_limit_default": Settings.model_fields["api_rate_limit"].default,
                     "cpu_workers": Settings.model_fields["api_cpu_workers"].default,
                     "hammer_clients": HAMMER_CLIENTS, "hammer_process_nice": HAMMER_NICENESS, "bookings_per_phase": BOOKINGS,
                     "fill_bookings_hammered_evening": FILL},
        "phases": [quiet, hammered],
        "targets": targets,
        "all_met": all(t["met"] for t in targets.values()),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    if ARGS.hammer:
        job = ARGS.hammer
        print(json.dumps(asyncio.run(hammer(job["url"], job["token"], job["restaurant"],
                                            job["day"], [tuple(w) for w in job["windows"]],
                                            HAMMER_CLIENTS))))
        sys.exit(0)
    result = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("api-quick.json" if QUICK else "api-latest.json")
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
