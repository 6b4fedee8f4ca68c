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

1. quiet: `booker` posts 100 bookings at 5/s (`POST .../bookings`), nothing
   else runs: its POST latency (client side) and created -> confirmed
   (bookings.created_at -> confirmed_at) are the baseline;
2. hammered: the same, while 8 clients of `hammer` (another process, so the
   measuring client is not slowed by them) ask availability for the filled
   evening back to back, without pausing on a 429.

Targets: hammered POST P95 < 150 ms; hammered created -> confirmed P95 within
1.5x the quiet one; the hammering token gets 429s.

    python bench/api.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FLOOR = ROOT / "examples" / "floorplans" / "harbour-kitchen.json"

QUICK = "--quick" in sys.argv
BOOKINGS = 40 if QUICK else 100
RATE = 5.0
HAMMER_CLIENTS = 8
# The hammering clients would run on their own machines; here they share the
# box with the API, so they run at a lower CPU priority, as a remote client's
# CPU would not be the API's (recorded in the JSON).
HAMMER_NICENESS = 10
FILL = 34  # one evening of the hammered restaurant (loadtest's plan: all fit)


def binary(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable}; run `make install`")
    return found


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


async def hammer(url: str, token: str, restaurant: str, day: str, seconds: float,
                 clients: int) -> dict[str, Any]:
    import httpx

    statuses: Counter[int] = Counter()
    ok_ms: list[float] = []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        async def one() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await http.get(f"/v1/restaurants/{restaurant}/availability",
                                   params={"party": 4, "date": day},
                                   headers={"Authorization": f"Bearer {token}"})
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    ok_ms.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one() for _ in range(clients)))
    return {"clients": clients, "seconds": seconds,
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


async def phase(name: str, *, url: str, engine: Any, tokens: dict[str, str], planned: list[Any],
                hammer_day: str | None, pids: dict[str, int]) -> dict[str, Any]:
    cpu_before = cpu_seconds(pids)
    wall = time.perf_counter()
    proc = None
    if hammer_day is not None:
        seconds = len(planned) / RATE + 2
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
            ["nice", "-n", str(HAMMER_NICENESS), sys.executable, __file__, "--hammer", url, tokens["hammer"], "hammered",
             hammer_day, str(seconds)], stdout=subprocess.PIPE, cwd=ROOT)
        await asyncio.sleep(1.0)  # the hammering is under way before the first booking
    load_before = os.getloadavg()[0]
    ids, post_ms, statuses = await post_bookings(url, tokens["booker"], "booked", planned)
    load_after = os.getloadavg()[0]
    cpu_after = cpu_seconds(pids)
    wall = time.perf_counter() - wall
    hammered = None
    if proc is not None:
        out, _ = await asyncio.to_thread(proc.communicate)
        hammered = json.loads(out)
    return {"phase": name, "bookings": len(planned), "rate_per_second": RATE,
            "post_statuses": {str(k): v for k, v in sorted(statuses.items())},
            "post_ms": {"p50": pct(post_ms, 0.5), "p95": pct(post_ms, 0.95),
                        "max": round(max(post_ms), 1) if post_ms else None},
            **await confirm_figures(engine, ids),
            "load_average_1m": [round(load_before, 2), round(load_after, 2)],
            # share of one core each process used during the phase
            "cpu_share": {k: round((cpu_after[k] - cpu_before.get(k, 0.0)) / wall, 3)
                          for k in cpu_after},
            "hammer": hammered}


async def main() -> dict[str, Any]:
    import httpx
    from temporalio.testing import WorkflowEnvironment

    from seatflow.config import Settings
    from seatflow.domain.search_attributes import ALL
    from seatflow.logging import configure_logging
    from seatflow.ops.loadtest import ensure_restaurants, first_free_evening, plan_bookings
    from seatflow.storage.db import make_engine, upgrade
    from seatflow.storage.embedded import start_embedded_postgres

    configure_logging("json", level="WARNING")
    tmp = Path(tempfile.mkdtemp(prefix="seatflow-bench-api-"))
    url_db = start_embedded_postgres(tmp / "pg", persistent=False)
    upgrade(url_db)
    saved_stdout = os.dup(1)
    os.dup2(2, 1)  # the dev server's banner goes to stderr: stdout is the JSON
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"), search_attributes=list(ALL),
            dev_server_log_level="error", ui=False)
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    address = env.client.service_client.config.target_host
    tokens = {name: secrets.token_urlsafe(24) for name in ("hammer", "booker")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base_env = dict(
        os.environ, DATABASE_URL=url_db, TEMPORAL_ADDRESS=address, SEATFLOW_TASK_QUEUE="bench-api",
        SEATFLOW_METRICS_ADDRESS="off", SEATFLOW_LOG_FORMAT="json",
        SEATFLOW_MAILBOX_DIR=str(tmp / "mailbox"), FEATURE_ASSIGNMENT_PIPELINE_V3="true",
        SEATFLOW_API_ADDRESS=f"127.0.0.1:{port}",
        SEATFLOW_API_TOKENS=json.dumps([
            {"name": "hammer", "token": tokens["hammer"], "role": "host",
             "restaurants": ["hammered"]},
            {"name": "booker", "token": tokens["booker"], "role": "host",
             "restaurants": ["booked"]}]),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench")]))
    for key in ("SEATFLOW_API_RATE_LIMIT", "SEATFLOW_API_CPU_WORKERS",
                "SEATFLOW_API_CPU_WAIT_MS"):
        base_env.pop(key, None)  # the deployed defaults
    procs = [start(["-m", "worker"], base_env, tmp / "worker.log"),
             start(["-m", "seatflow.api.server"], base_env, tmp / "api.log")]
    pids = {"worker": procs[0].pid, "api": procs[1].pid,
            "postgres": int((tmp / "pg" / "postmaster.pid").read_text().split()[0])}
    engine = make_engine(url_db, pool_size=5, max_overflow=5)
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
                raise SystemExit(f"the API did not start: {(tmp / 'api.log').read_text()}")
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
        quiet = await phase("quiet", url=url, engine=engine, tokens=tokens,
                            planned=planned[10:10 + BOOKINGS], hammer_day=None, pids=pids)
        hammered = await phase("hammered", url=url, engine=engine, tokens=tokens,
                               planned=planned[10 + BOOKINGS:], hammer_day=evening.isoformat(),
                               pids=pids)
    finally:
        await engine.dispose()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        await env.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
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
    if len(sys.argv) > 1 and sys.argv[1] == "--hammer":
        _, _, url, token, restaurant, day, seconds = sys.argv
        print(json.dumps(asyncio.run(hammer(url, token, restaurant, day, float(seconds),
                                            HAMMER_CLIENTS))))
        sys.exit(0)
    result = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("api-quick.json" if QUICK else "api-latest.json")
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
