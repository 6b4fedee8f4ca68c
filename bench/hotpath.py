"""The worker's database hot path, in process (issue 27): the activity
sequence of one booking (begin_booking, run_attempt, send_confirmation_email)
run directly on `BookingActivities` against a real PostgreSQL (embedded
pgserver, migrated), without Temporal. Prints JSON: CPU time of this process
(`time.process_time()`) per booking, per activity and in all, and the
database round trips per booking (socket writes of the event loop's
transports: the file mailbox writes no socket, and nothing else talks).

    .venv/bin/python bench/hotpath.py [--bookings 200] [--repeat 5] [--warmup 40]
                                      [--storage-only]

Each repetition books `--bookings` new bookings, one after the other, over
10 copies of the sample floor plan (a new evening each time); the first
`--warmup` bookings (not counted) fill the pool's connections' statement
caches. PostgreSQL runs in other processes: its CPU is not in the figure.
`--storage-only` runs the same storage calls with the legacy first-fit
planner instead of the engine's search and without composing or writing the
message (claim, then mark sent): the database path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from asyncio import selector_events
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

WRITES = 0


def _count_writes() -> None:
    """Count the writes of every socket transport (one per round trip: asyncpg
    sends a statement's messages in one write and waits for the answer)."""
    cls: Any = selector_events._SelectorSocketTransport
    original = cls.write

    def write(self: Any, data: Any) -> None:
        global WRITES
        WRITES += 1
        original(self, data)

    cls.write = write


async def _book(acts: Any, env: Any, booking_id: str, restaurant_id: str,
                spent: dict[str, float]) -> str:
    from seatflow.domain.messages import AttemptRequest, EmailRequest, VerifyRequest

    t0 = time.process_time()
    begun = await env.run(acts.begin_booking, VerifyRequest(booking_id))
    t1 = time.process_time()
    ctx = begun.context
    result = await env.run(acts.run_attempt, AttemptRequest(
        booking_id=booking_id, restaurant_id=restaurant_id, expected_version=ctx.version,
        attempt_no=1, on_failure="assignment_pending", max_parallel=3))
    t2 = time.process_time()
    if result.outcome == "confirmed":
        sent = await env.run(acts.send_confirmation_email, EmailRequest(booking_id))
        assert sent.sent, sent
    t3 = time.process_time()
    spent["begin"] += t1 - t0
    spent["attempt"] += t2 - t1
    spent["email"] += t3 - t2
    return str(result.outcome)


async def _storage_only(acts: Any, booking_id: str, restaurant_id: str,
                        spent: dict[str, float]) -> str:
    """The same storage calls without the engine's search (the legacy
    first-fit planner) and without composing and writing the message: what
    the database path costs alone."""
    from datetime import UTC, datetime
    from functools import partial

    from activities.booking import _legacy_plan
    from seatflow.domain.states import AssignmentState
    from seatflow.mail import claim_outbox_email, finish_claim
    from seatflow.storage import attempts, lifecycle

    t0 = time.process_time()
    ctx = await lifecycle.verify_booking(acts.engine, booking_id, now=datetime.now(UTC))
    t1 = time.process_time()
    rec = await attempts.run_attempt(acts.engine, attempts.AttemptSpec(
        booking_id=booking_id, restaurant_id=restaurant_id, expected_version=ctx.version,
        attempt_no=1, on_failure=AssignmentState.ASSIGNMENT_PENDING, max_parallel=3,
        slot_wait_seconds=0.5), partial(_legacy_plan, acts.config))
    t2 = time.process_time()
    if rec.outcome == "confirmed":
        claim = await claim_outbox_email(acts.engine, booking_id, "confirmation")
        assert not hasattr(claim, "sent"), claim
        done = await finish_claim(acts.engine, claim, path="not delivered")  # type: ignore[arg-type]
        assert done is not None and done.sent, done
    t3 = time.process_time()
    spent["begin"] += t1 - t0
    spent["attempt"] += t2 - t1
    spent["email"] += t3 - t2
    return str(rec.outcome)


async def _create(engine: Any, ids: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    from datetime import UTC, datetime

    from seatflow.domain.intake import NewBooking
    from seatflow.ops.loadtest import first_free_evening, plan_bookings
    from seatflow.storage.intake import insert_booking_once

    tz = ZoneInfo("Europe/London")
    planned = plan_bookings(count, ids, await first_free_evening(engine, ids, tz), tz,
                            random.Random(seed))
    made = []
    for k, b in enumerate(planned):
        booking_id, _ = await insert_booking_once(engine, NewBooking(
            restaurant_id=b.restaurant_id, party_size=b.party_size, start=b.start,
            guest_name=f"Bench {k}", guest_email=f"bench-{k}@example.com"),
            now=datetime.now(UTC))
        made.append((booking_id, b.restaurant_id))
    return made


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from temporalio.testing import ActivityEnvironment

    from activities.booking import BookingActivities
    from seatflow.config import load_settings
    from seatflow.logging import configure_logging
    from seatflow.mail import FileMailbox
    from seatflow.ops.loadtest import ensure_restaurants
    from seatflow.storage.db import make_engine, upgrade
    from seatflow.storage.embedded import start_embedded_postgres

    configure_logging("json")  # as the worker logs (to stderr)
    tmp = Path(tempfile.mkdtemp(prefix="seatflow-hotpath-"))
    try:
        url = start_embedded_postgres(tmp / "pg", persistent=False)
        upgrade(url)
        engine = make_engine(url)
        settings = load_settings(DATABASE_URL=url, SEATFLOW_MAILBOX_DIR=str(tmp / "mailbox"))
        acts = BookingActivities(engine, FileMailbox(tmp / "mailbox"), settings)
        env = ActivityEnvironment()
        ids = [f"hot-{i}" for i in range(1, 11)]
        template = ROOT / "examples" / "floorplans" / "harbour-kitchen.json"
        await ensure_restaurants(engine, ids, template)
        _count_writes()
        runs = []
        for rep in range(args.repeat + 1):  # the first is the warm-up
            count = args.warmup if rep == 0 else args.bookings
            made = await _create(engine, ids, count, seed=rep)
            spent = {"begin": 0.0, "attempt": 0.0, "email": 0.0}
            outcomes: dict[str, int] = {}
            writes, cpu, wall = WRITES, time.process_time(), time.perf_counter()
            for booking_id, restaurant_id in made:
                if args.storage_only:
                    outcome = await _storage_only(acts, booking_id, restaurant_id, spent)
                else:
                    outcome = await _book(acts, env, booking_id, restaurant_id, spent)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if rep == 0:
                continue
            runs.append({
                "cpu_ms_per_booking": round(cpu * 1000 / count, 3),
                "by_activity_ms": {k: round(v * 1000 / count, 3) for k, v in spent.items()},
                "round_trips_per_booking": round((WRITES - writes) / count, 2),
                "wall_ms_per_booking": round(wall * 1000 / count, 3),
                "outcomes": outcomes,
            })
        await engine.dispose()
    finally:
        import pgserver

        pgserver.get_server(tmp / "pg").cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    cpu_runs = [r["cpu_ms_per_booking"] for r in runs]
    return {
        "bench": "hotpath",
        "storage_only": args.storage_only,
        "bookings_per_run": args.bookings,
        "runs": runs,
        "cpu_ms_per_booking": {
            "mean": round(statistics.mean(cpu_runs), 3),
            "stdev": round(statistics.stdev(cpu_runs), 3) if len(cpu_runs) > 1 else 0.0,
            "min": min(cpu_runs), "max": max(cpu_runs)},
        "by_activity_ms_mean": {
            k: round(statistics.mean(r["by_activity_ms"][k] for r in runs), 3)
            for k in ("begin", "attempt", "email")},
        "round_trips_per_booking": runs[-1]["round_trips_per_booking"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--storage-only", action="store_true",
                        help="the storage calls alone: no search (first fit), no message")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
