"""Pipeline benchmark (`make bench-pipeline`): seatflow against the fastest the
same Temporal server and worker settings can go. Prints one JSON document.

In one run on an embedded stack (pgserver in a temporary directory, the
Temporal dev server from the `temporal` binary, the production worker from
`worker.build_worker` in this process, FEATURE_ASSIGNMENT_PIPELINE_V3=true):

(a) ceiling: a trivial workflow of two no-op activities, 500 at once, on a
    worker with the production worker's settings (Worker.config() copied);
(b) throughput: 500 bookings over 25 restaurants with enough tables that all
    confirm, created at once through the real intake; ratio (b)/(a);
(c) latency: 100 concurrent bookings over 10 restaurants: created -> confirmed
    percentiles, permit wait P95 and the observed concurrency per restaurant
    (from permit_intervals), against FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL.

Both (a) and (b) are timed from the first start to the last workflow result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

# Module level stays free of I/O: the workflow sandbox re-imports this module.
ROOT = Path(__file__).parent.parent

CEILING_WORKFLOWS = 500
THROUGHPUT_BOOKINGS, THROUGHPUT_RESTAURANTS = 500, 25
LATENCY_BOOKINGS, LATENCY_RESTAURANTS = 100, 10


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        for _ in range(2):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))


def binary(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable}; run `make install`")
    return found


async def ceiling(client: Client, queue: str, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    handles = await asyncio.gather(*(
        client.start_workflow(NoopWorkflow.run, id=f"bench-noop-{uuid.uuid4()}",
                              task_queue=queue)
        for _ in range(count)))
    await asyncio.gather(*(h.result() for h in handles))
    seconds = time.perf_counter() - started
    return {"workflows": count, "seconds": round(seconds, 3),
            "per_second": round(count / seconds, 2)}


async def book(engine: Any, client: Client, queue: str, prefix: str, bookings: int,
               restaurants: int, seed: int) -> tuple[list[str], float]:
    """Create `bookings` at once over fresh restaurants; wait for every workflow result."""
    from seatflow.bookings_service import create_booking
    from seatflow.loadtest import ensure_restaurants, first_free_evening, plan_bookings
    from seatflow.storage.bookings import NewBooking, workflow_id_for

    ids = [f"{prefix}-{i}" for i in range(1, restaurants + 1)]
    _, tz_name = await ensure_restaurants(
        engine, ids, ROOT / "examples" / "floorplans" / "harbour-kitchen.json")
    tz = ZoneInfo(tz_name)
    planned = plan_bookings(bookings, ids, await first_free_evening(engine, ids, tz), tz,
                            random.Random(seed))
    started = time.perf_counter()
    created = await asyncio.gather(*(
        create_booking(engine, client, NewBooking(
            restaurant_id=b.restaurant_id, party_size=b.party_size, start=b.start,
            guest_name=f"Bench {k}", guest_email=f"bench-{k}@example.com"), task_queue=queue)
        for k, b in enumerate(planned)))
    await asyncio.gather(*(
        client.get_workflow_handle(workflow_id_for(c.booking_id)).result() for c in created))
    return [c.booking_id for c in created], time.perf_counter() - started


async def permit_hold_ms(engine: Any, ids: list[str]) -> dict[str, float | None]:
    """How long a booking holds its restaurant's permit (search + confirm)."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY x) AS p95 FROM ("
            "SELECT EXTRACT(EPOCH FROM released_at - acquired_at) * 1000 AS x "
            "FROM permit_intervals WHERE booking_id = ANY(CAST(:ids AS uuid[])) "
            "AND released_at IS NOT NULL) h"), {"ids": ids})).one()
    return {"p50": None if row.p50 is None else round(float(row.p50), 1),
            "p95": None if row.p95 is None else round(float(row.p95), 1)}


async def main() -> dict[str, Any]:
    from temporalio.testing import WorkflowEnvironment

    from seatflow.config import load_flags, load_settings
    from seatflow.loadtest import (
        latency_percentiles,
        max_concurrency_per_restaurant,
        permit_wait_p95_ms,
        states_of,
    )
    from seatflow.logging import configure_logging
    from seatflow.storage.db import make_engine, upgrade
    from seatflow.storage.embedded import start_embedded_postgres
    from worker import build_worker
    from workflows.search_attributes import ALL

    # Log lines go to stderr: stdout carries only the JSON document.
    configure_logging("json", level="WARNING")
    tmp = Path(tempfile.mkdtemp(prefix="seatflow-bench-"))
    url = start_embedded_postgres(tmp / "pg", persistent=False)
    upgrade(url)
    # The dev server prints a banner on its stdout: send it to stderr, so that
    # stdout carries only the JSON document.
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"), search_attributes=list(ALL),
            dev_server_log_level="error", ui=False)
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    settings = load_settings(DATABASE_URL=url, SEATFLOW_MAILBOX_DIR=str(tmp / "mailbox"))
    flags = load_flags()
    worker_engine = make_engine(url)  # the production worker's pool (worker.serve)
    intake_engine = make_engine(url, pool_size=20, max_overflow=20)  # the load generator's
    client = env.client
    run = uuid.uuid4().hex[:6]
    try:
        seatflow_worker = build_worker(client, worker_engine, settings, task_queue="bench")
        config = dict(seatflow_worker.config())
        config.update(task_queue="bench-noop", workflows=[NoopWorkflow], activities=[noop])
        noop_worker = Worker(**config)
        async with seatflow_worker, noop_worker:
            # Warm-up: sandbox imports, connection pools, sticky caches.
            await ceiling(client, "bench-noop", 20)
            await book(intake_engine, client, "bench", f"bw{run}", 10, 5, seed=1)

            a = await ceiling(client, "bench-noop", CEILING_WORKFLOWS)
            ids_b, seconds_b = await book(intake_engine, client, "bench", f"bt{run}",
                                          THROUGHPUT_BOOKINGS, THROUGHPUT_RESTAURANTS, seed=2)
            ids_c, seconds_c = await book(intake_engine, client, "bench", f"bl{run}",
                                          LATENCY_BOOKINGS, LATENCY_RESTAURANTS, seed=3)
        b = {
            "bookings": THROUGHPUT_BOOKINGS, "restaurants": THROUGHPUT_RESTAURANTS,
            "seconds": round(seconds_b, 3),
            "per_second": round(THROUGHPUT_BOOKINGS / seconds_b, 2),
            "outcomes": dict(await states_of(intake_engine, ids_b)),
            "latency_seconds": await latency_percentiles(intake_engine, ids_b),
            "permit_wait_p95_ms": await permit_wait_p95_ms(intake_engine, ids_b),
            "permit_hold_ms": await permit_hold_ms(intake_engine, ids_b),
            "max_concurrency": max(
                (await max_concurrency_per_restaurant(intake_engine, ids_b)).values(),
                default=None),
        }
        per_restaurant = await max_concurrency_per_restaurant(intake_engine, ids_c)
        c = {
            "bookings": LATENCY_BOOKINGS, "restaurants": LATENCY_RESTAURANTS,
            "seconds": round(seconds_c, 3),
            "outcomes": dict(await states_of(intake_engine, ids_c)),
            "latency_seconds": await latency_percentiles(intake_engine, ids_c),
            "permit_wait_p95_ms": await permit_wait_p95_ms(intake_engine, ids_c),
            "permit_hold_ms": await permit_hold_ms(intake_engine, ids_c),
            "max_concurrency_per_restaurant": per_restaurant,
            "max_concurrency": max(per_restaurant.values(), default=None),
        }
    finally:
        await intake_engine.dispose()
        await worker_engine.dispose()
        await env.shutdown()
        with contextlib.suppress(Exception):  # best effort: the directory goes anyway
            import pgserver

            pgserver.get_server(tmp / "pg").cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = round(b["per_second"] / a["per_second"], 3)
    p95 = c["latency_seconds"]["p95"]
    waits = [x for x in (b["permit_wait_p95_ms"], c["permit_wait_p95_ms"]) if x is not None]
    observed = [x for x in (b["max_concurrency"], c["max_concurrency"]) if x is not None]
    return {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "max_parallel": flags.max_parallel,
            "max_concurrent_activities": config.get("max_concurrent_activities"),
            "max_concurrent_workflow_tasks": config.get("max_concurrent_workflow_tasks"),
        },
        "ceiling": a,
        "throughput": b,
        "ratio": ratio,
        "latency": c,
        "targets": {
            "ratio_at_least_0.5": ratio >= 0.5,
            "p95_latency_under_1.5s": p95 is not None and p95 < 1.5,
            "permit_wait_p95_under_100ms": bool(waits) and max(waits) < 100,
            "concurrency_within_max_parallel": bool(observed)
            and max(observed) <= flags.max_parallel,
        },
    }


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    os.environ.setdefault("FEATURE_ASSIGNMENT_PIPELINE_V3", "true")
    result = asyncio.run(main())
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
