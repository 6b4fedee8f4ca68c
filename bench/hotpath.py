"""CPU of two of the worker's hot paths, measured in process (issue 27).

    python bench/hotpath.py mail   [--messages 300] [--profile]
    python bench/hotpath.py search [--shape sample40 ...] [--loads 70,100,130] [--fresh]
                                   [--seeds 1,2] [--profile]

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
    args = parser.parse_args()
    gc.collect()
    if args.what == "mail":
        result = mail_bench(args.messages, args.profile)
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
