"""CPU of two of the worker's hot paths, measured in process (issue 27).

    python bench/hotpath.py mail   [--messages 300] [--profile]
    python bench/hotpath.py search [--shape sample40 ...] [--loads 70,100,130] [--fresh]
                                   [--seeds 1,2] [--profile]
    python bench/hotpath.py booking [--bookings 200] [--repeat 5] [--warmup 40]
                                    [--storage-only]

`mail`: one guest confirmation as the worker makes it, per message
(`time.process_time`, ms): `render` (`confirmation_email`: the texts and the
calendar, written into the outbox by the attempt's transaction), `compose`
(`mail.build_message`: the MIME message from the claimed row) and `deliver`
(`FileMailbox.deliver`: the bytes written to a temporary directory; of it,
`of_deliver_bytes` writing the message's bytes in memory, the rest is the
file's write and rename, the kernel's CPU).
Bookings vary (id, guest name, party, start), the restaurant stays: the
worker's caches behave as in a burst.

`search`: the booking pipeline's search (`engine_repack`, bench/policies.py)
over each shape's evenings (bench/workload.py, with the demand profile of
their history), CPU ms per search, and the part of it spent in the
lookahead's `DemandView` (built and computed) within those searches.
`decisions` is a digest of every evening's seated bookings, their tables and
the moves: two engine versions decide identically iff the digests are equal.

`booking`: one booking's activities (`begin_booking`, `run_attempt`,
`send_confirmation_email`) called one after the other on `BookingActivities`
(through temporalio's `ActivityEnvironment`, no server) against an embedded
PostgreSQL (pgserver, migrated), over 10 copies of the sample floor plan, a
new evening each repetition: CPU per booking of this process, in all and per
activity, and database round trips per booking (the socket writes of the
event loop's transports: asyncpg sends a statement's messages in one write;
the file mailbox writes no socket). The first `--warmup` bookings fill the
pool's statement caches and are not counted. PostgreSQL's CPU is its own
processes', not in the figure. `--storage-only`: the same storage calls
with the legacy first-fit planner instead of the engine's search and
without composing or writing the message (claim, then mark sent): the
database path alone.

Prints one JSON document; writes nothing under bench/results/.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, embedded_postgres


def _profile(work: Any) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


# ------------------------------------------------------------------ mail


def mail_bench(messages: int, profile: bool) -> dict[str, Any]:
    from seatflow import mail
    from seatflow.domain.mail import Claim, EmailBooking, confirmation_email
    from seatflow.mail import FileMailbox, build_message

    start = datetime(2026, 12, 16, 19, 0, tzinfo=UTC)
    bookings = [
        EmailBooking(
            booking_id=f"00000000-0000-4000-8000-{i:012d}",
            restaurant_name="Harbour Kitchen",
            timezone="Europe/Paris",
            party_size=1 + i % 8,
            start=start + timedelta(minutes=15 * (i % 12)),
            end=start + timedelta(minutes=15 * (i % 12) + 105),
            stamp=datetime(2026, 12, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=i),
            guest_name=f"Guest {i}",
            zone="terrace" if i % 3 == 0 else None,
        )
        for i in range(messages)
    ]
    sender = "bookings@seatflow.example"
    with tempfile.TemporaryDirectory() as directory:
        box = FileMailbox(Path(directory))

        def one_round() -> dict[str, float]:
            spent = {"render": 0.0, "compose": 0.0, "deliver": 0.0}
            for b in bookings:
                t0 = time.process_time()
                email = confirmation_email(b)
                t1 = time.process_time()
                claim = Claim(1, b.booking_id, "confirmation", f"guest{b.party_size}@example.com",
                              email.subject, email.text, 1, html=email.html, ics=email.ics,
                              token="t", sender_name=b.restaurant_name)
                message = build_message(claim, sender)
                t2 = time.process_time()
                box.deliver(f"{b.booking_id}-confirmation", message)
                t3 = time.process_time()
                spent["render"] += t1 - t0
                spent["compose"] += t2 - t1
                spent["deliver"] += t3 - t2
            return spent

        one_round()  # warm: imports, caches, the directory
        rounds = [one_round() for _ in range(5)]
        out: dict[str, Any] = {"messages": messages, "rounds": len(rounds)}
        for part in ("render", "compose", "deliver"):
            per = [r[part] * 1000 / messages for r in rounds]
            out[f"{part}_ms"] = round(statistics.median(per), 4)
            out[f"{part}_ms_min"] = round(min(per), 4)
        out["total_ms"] = round(out["render_ms"] + out["compose_ms"] + out["deliver_ms"], 4)
        # Of `deliver`, the bytes alone (the rest is the file's write and
        # rename), on new messages each round: writing one sets its boundaries.
        emails = [confirmation_email(b) for b in bookings]
        spent_bytes = []
        for _ in range(5):
            built = [build_message(Claim(
                1, b.booking_id, "confirmation", "guest@example.com", e.subject, e.text, 1,
                html=e.html, ics=e.ics, token="t", sender_name=b.restaurant_name), sender)
                for b, e in zip(bookings, emails, strict=True)]
            t0 = time.process_time()
            for message in built:
                mail.message_bytes(message)
            spent_bytes.append((time.process_time() - t0) * 1000 / messages)
        out["of_deliver_bytes_ms"] = round(statistics.median(spent_bytes), 4)
        last = Path(directory) / f"{bookings[-1].booking_id}-confirmation.eml"
        out["eml_bytes"] = len(last.read_bytes())
        if profile:
            out["profile"] = _profile(one_round)
    return out


# ------------------------------------------------------------------ search


def search_bench(shapes: list[str], loads: list[int], seeds: list[int],
                 profile: bool, fresh: bool) -> dict[str, Any]:
    import policies
    from policies import simulate
    from workload import SHAPES, evening, with_history

    from seatflow.engine.demand import DemandView

    search_module = importlib.import_module("seatflow.engine.search")
    spent = [0.0]

    class TimedDemandView(DemandView):
        """The lookahead's view, its CPU counted (construction and compute)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            t0 = time.process_time()
            super().__init__(*args, **kwargs)
            spent[0] += time.process_time() - t0

        def _compute(self) -> None:
            t0 = time.process_time()
            super()._compute()
            spent[0] += time.process_time() - t0

    search_module.DemandView = TimedDemandView
    held_floor = policies.allocations_of
    if fresh:  # each search's tables new objects, as read from the database

        def fresh_floor(*args: Any, **kwargs: Any) -> Any:
            snapshot = held_floor(*args, **kwargs)
            return replace(snapshot, tables=tuple(replace(t) for t in snapshot.tables))

        policies.allocations_of = fresh_floor
    digest = hashlib.sha256()
    cells: dict[str, Any] = {}
    all_cpu: list[float] = []
    all_demand = 0.0
    for shape in shapes:
        bare = SHAPES[shape]()
        for load in loads:
            floor = with_history(bare, load)
            for seed in seeds:
                requests = evening(floor, load, seed)
                spent[0] = 0.0
                run = simulate(floor, requests, "engine_repack")
                decided = {
                    "covers": run["covers"], "accepted": run["accepted"],
                    "moves": run["moves"], "zone_changes": run["zone_changes"],
                    "repeat_moves": run["repeat_moves"],
                    "held": sorted(run["held"].items()),
                }
                digest.update(json.dumps([shape, load, seed, decided]).encode())
                cells[f"{shape}/{load}/{seed}"] = {
                    "requests": len(requests), "covers": run["covers"],
                    "moves": run["moves"],
                    "search_cpu_ms_mean": round(statistics.fmean(run["cpu_ms"]), 4),
                    "demand_view_cpu_ms_mean": round(spent[0] * 1000 / len(requests), 4),
                }
                all_cpu.extend(run["cpu_ms"])
                all_demand += spent[0] * 1000
    out: dict[str, Any] = {
        "searches": len(all_cpu),
        "search_cpu_ms_mean": round(statistics.fmean(all_cpu), 4),
        "search_cpu_ms_total": round(sum(all_cpu), 1),
        "demand_view_cpu_ms_mean": round(all_demand / len(all_cpu), 4),
        "decisions": digest.hexdigest(),
        "cells": cells,
    }
    if profile:
        shape, load, seed = shapes[0], loads[len(loads) // 2], seeds[0]
        floor = with_history(SHAPES[shape](), load)
        requests = evening(floor, load, seed)
        out["profile"] = _profile(lambda: simulate(floor, requests, "engine_repack"))
    search_module.DemandView = DemandView
    policies.allocations_of = held_floor
    out["fresh_tables"] = fresh
    return out


# ------------------------------------------------------------------ booking

WRITES = 0


def _count_writes() -> None:
    """Count the writes of every socket transport (one per round trip: asyncpg
    sends a statement's messages in one write and waits for the answer)."""
    from asyncio import selector_events

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
    import random
    from zoneinfo import ZoneInfo

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


async def booking_bench(args: argparse.Namespace) -> dict[str, Any]:
    from temporalio.testing import ActivityEnvironment

    from activities.booking import BookingActivities
    from seatflow.config import load_settings
    from seatflow.logging import configure_logging
    from seatflow.mail import FileMailbox
    from seatflow.ops.loadtest import ensure_restaurants
    from seatflow.storage.db import make_engine

    configure_logging("json")  # as the worker logs (to stderr)
    with embedded_postgres("seatflow-hotpath-") as (tmp, url):
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
    cpu_runs = [r["cpu_ms_per_booking"] for r in runs]
    return {
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
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mail = sub.add_parser("mail", help="CPU per confirmation message")
    mail.add_argument("--messages", type=int, default=300)
    mail.add_argument("--profile", action="store_true", help="add a cProfile listing")
    search = sub.add_parser("search", help="CPU per search and the lookahead's share")
    search.add_argument("--shape", action="append",
                        choices=["corner9", "sample40", "bistro62"])
    search.add_argument("--loads", default="70,100,130")
    search.add_argument("--seeds", default="1,2")
    search.add_argument("--profile", action="store_true", help="add a cProfile listing")
    search.add_argument("--fresh", action="store_true",
                        help="new table objects for every search, as the pipeline reads them")
    booking = sub.add_parser("booking", help="CPU and round trips per booking's activities")
    booking.add_argument("--bookings", type=int, default=200)
    booking.add_argument("--repeat", type=int, default=5)
    booking.add_argument("--warmup", type=int, default=40)
    booking.add_argument("--storage-only", action="store_true",
                         help="the storage calls alone: no search (first fit), no message")
    args = parser.parse_args()
    gc.collect()
    if args.what == "mail":
        result = mail_bench(args.messages, args.profile)
    elif args.what == "booking":
        import asyncio

        result = asyncio.run(booking_bench(args))
    else:
        result = search_bench(args.shape or ["corner9", "sample40", "bistro62"],
                              [int(x) for x in args.loads.split(",")],
                              [int(x) for x in args.seeds.split(",")], args.profile,
                              args.fresh)
    result["cpus"] = os.cpu_count()
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    profile_text = result.pop("profile", None)
    print(json.dumps(result, indent=2))
    if profile_text:
        print(profile_text, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
