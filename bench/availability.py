"""Availability benchmark: a whole evening for one party size on the 40-table
sample floor (examples/floorplans/harbour-kitchen.json) holding 100 allocations.

Prints one JSON document; not part of the test suite.

    python bench/availability.py            # full run (about a minute on 2 cores)
    python bench/availability.py --quick    # smoke run

Three measurements, each P50/P95/P99 of wall clock and of CPU time over
repeated calls, per party size (the machine is shared: CPU time is the steadier
figure, wall clock is what a guest waits):

- `engine`: `seatflow.engine.availability.evaluate_counted` on an in-memory snapshot
  (intake rules, free-plan check, the yes/no re-packing path within its step
  budget, `EngineConfig.availability_repack_steps`), with how many start times
  were decided by a free plan, a re-assignment found or re-used, a proof of
  none, or left undecided (searched, not reached within the steps, or stopped
  by the wall-clock safety stop), the steps spent, how many runs the safety
  stop fired in, and the offered times against the baseline's;
- `baseline`: the previous path, measured in the same run: the pipeline's full
  `search` (fewest-moves re-packing) for every start time without a free plan;
- `end_to_end`: `seatflow.service.availability.check_availability` against PostgreSQL
  (embedded pgserver, or DATABASE_URL): the read-only snapshot transaction plus
  the evaluation, what `seatflow availability` and the API pay.

The JSON goes to stdout and to bench/results/availability-latest.json
(`--out` to change; the quick run writes availability-quick.json).

The evening is filled the way the pipeline fills it: seeded requests in random
order, each seated at the best plan `search` returns (no re-packing moves),
until the floor holds at least 100 allocations (table holdings).
Target: end-to-end P95 < 50 ms for the whole dinner service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    EngineConfig,
    Mobility,
    RestaurantSnapshot,
    Table,
    TableStatus,
)
from seatflow.domain.restaurant import (
    RestaurantPolicy,
    ServicePeriod,
    TurnBand,
    booking_window,
)
from seatflow.engine import search
from seatflow.engine.availability import (
    PROBE_BOOKING_ID,
    candidate_starts,
    day_window,
    evaluate_counted,
)
from seatflow.engine.combinations import enumerate_plans
from seatflow.engine.floor import Floor
from seatflow.floorplan import FloorPlan
from seatflow.floorplan_file import load_floorplan
from seatflow.service.availability import check_availability

FLOOR_FILE = ROOT / "examples" / "floorplans" / "harbour-kitchen.json"
TARGET_ALLOCATIONS = 100
TARGET_P95_MS = 50.0
PARTIES = (2, 4, 6)
# party size -> weight (mostly couples, some fours, a few larger groups)
PARTY_MIX = {1: 8, 2: 55, 3: 12, 4: 15, 5: 3, 6: 4, 7: 1, 8: 1.5}


def policy_of(plan: FloorPlan) -> RestaurantPolicy:
    spec = plan.restaurant
    return RestaurantPolicy(
        id=spec.id, name=spec.name, timezone=spec.timezone, buffer_minutes=spec.buffer_minutes,
        total_capacity=plan.total_capacity, slot_minutes=spec.slot_minutes,
        services=tuple(
            ServicePeriod(s.name, s.start, s.end,
                          tuple(TurnBand(b.max_party, b.minutes) for b in s.turn_times))
            for s in spec.services
        ),
    )


def snapshot_of(plan: FloorPlan) -> RestaurantSnapshot:
    tables = tuple(
        Table(t.id, t.capacity, t.zone, min_party=t.min_party, max_party=t.max_party,
              mobility=Mobility(t.mobility), category=t.category, active=t.active,
              status=TableStatus(t.status))
        for t in plan.tables
    )
    return RestaurantSnapshot(
        plan.restaurant.id, tables, tuple((a, b) for a, b in plan.edges),
        zones_active=tuple(z.id for z in plan.zones if z.active),
        zone_groups=tuple(tuple(group) for group in plan.zone_groups),
    )


def fill_evening(
    snapshot: RestaurantSnapshot, policy: RestaurantPolicy, day: date, config: EngineConfig,
    seed: int,
) -> tuple[RestaurantSnapshot, list[dict[str, Any]]]:
    """Seat seeded dinner requests until the floor holds TARGET_ALLOCATIONS."""
    rng = random.Random(seed)
    lo, hi = day_window(policy, day)
    dinner = [s for s in candidate_starts(policy, lo, hi)
              if 17 <= s.astimezone(policy.tz).hour < 22]
    now = lo - timedelta(days=1)
    seated: list[dict[str, Any]] = []
    allocations: list[Allocation] = []
    for _ in range(2000):
        if len(allocations) >= TARGET_ALLOCATIONS:
            break
        party = rng.choices(list(PARTY_MIX), weights=list(PARTY_MIX.values()))[0]
        start = rng.choice(dinner)
        window = booking_window(policy, party, start, now=now)
        booking_id = str(uuid.UUID(int=rng.getrandbits(128)))
        request = BookingRequest(booking_id, party, window.start, window.occupied_until)
        current = replace(snapshot, allocations=tuple(allocations))
        result = search(current, request, replace(config, repack=False), now=now)
        if not result.found:
            continue
        tables = result.plans[0].tables
        allocations += [
            Allocation(booking_id, t, window.start, window.occupied_until, party, window.start)
            for t in tables
        ]
        seated.append({"id": booking_id, "party": party, "start": window.start,
                       "end": window.end, "until": window.occupied_until, "tables": tables})
    return replace(snapshot, allocations=tuple(allocations)), seated


def percentiles(samples: list[float], prefix: str = "") -> dict[str, float]:
    ordered = sorted(samples)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {f"{prefix}p50_ms": q(0.50), f"{prefix}p95_ms": q(0.95), f"{prefix}p99_ms": q(0.99),
            f"{prefix}mean_ms": round(statistics.fmean(ordered), 3)}


def timed(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    return {**percentiles(wall), **percentiles(cpu, "cpu_"), "samples": len(wall)}


def baseline_evaluate(snapshot: RestaurantSnapshot, policy: RestaurantPolicy, party: int,
                      starts: list[datetime], config: EngineConfig,
                      now: datetime) -> list[tuple[datetime, bool]]:
    """The path before this change: a free-plan check, then the pipeline's full
    `search` (exact re-packing, fewest moves, 10 ms budget, bounded fallback)
    for every start time without a free plan."""
    floor = Floor(snapshot)
    out = []
    for start in starts:
        window = booking_window(policy, party, start, now=now)
        request = BookingRequest(PROBE_BOOKING_ID, party, window.start, window.occupied_until)
        free = floor.free_tables(request.start, request.end)
        if enumerate_plans(floor, party, free, config).candidates:
            out.append((start, True))
            continue
        out.append((start, search(snapshot, request, config, now=now).found))
    return out


def bench_engine(snapshot: RestaurantSnapshot, policy: RestaurantPolicy, day: date,
                 config: EngineConfig, repeats: int, baseline_repeats: int) -> dict[str, Any]:
    lo, hi = day_window(policy, day)
    starts = [s for s in candidate_starts(policy, lo, hi) if s.astimezone(policy.tz).hour >= 17]
    now = lo - timedelta(days=1)
    out: dict[str, Any] = {"start_times": len(starts),
                           "repack_steps_budget": config.availability_repack_steps,
                           "safety_stop_ms": config.repack_safety_stop_ms}
    for party in PARTIES:
        wall: list[float] = []
        cpu: list[float] = []
        offered_runs: list[int] = []
        not_reached: list[int] = []
        steps: list[int] = []
        stopped = 0
        counts: dict[str, int] = {}
        offered: set[datetime] = set()
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            found = evaluate_counted(snapshot, policy, party, starts, config, now=now)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
            counts = found.counts
            offered = {s.start for s in found.slots if s.available}
            offered_runs.append(len(offered))
            not_reached.append(found.counts["undecided_not_reached"])
            steps.append(found.repack_steps)
            stopped += found.safety_stop
        base_wall: list[float] = []
        base_cpu: list[float] = []
        base_offered: set[datetime] = set()
        for _ in range(baseline_repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            answers = baseline_evaluate(snapshot, policy, party, starts, config, now)
            base_wall.append((time.perf_counter() - t0) * 1000)
            base_cpu.append((time.thread_time() - c0) * 1000)
            base_offered = {start for start, ok in answers if ok}
        fast = timed(wall, cpu)
        base = timed(base_wall, base_cpu)
        out[f"party_{party}"] = {
            **fast,
            "available_start_times": len(offered),
            "available_min_max_over_runs": [min(offered_runs), max(offered_runs)],
            "decided_by": counts,  # of the last run
            "runs_with_times_not_reached": sum(1 for n in not_reached if n),
            "repack_steps_min_max": [min(steps), max(steps)],
            "runs_safety_stopped": stopped,
            "baseline": {
                **base, "available_start_times": len(base_offered),
                "offered_by_baseline_not_here": sorted(
                    s.astimezone(policy.tz).strftime("%H:%M") for s in base_offered - offered),
                "offered_here_not_by_baseline": sorted(
                    s.astimezone(policy.tz).strftime("%H:%M") for s in offered - base_offered),
            },
            "speedup_p95_wall": round(base["p95_ms"] / fast["p95_ms"], 1),
            "speedup_p95_cpu": round(base["cpu_p95_ms"] / fast["cpu_p95_ms"], 1),
        }
    return out


async def bench_end_to_end(plan: FloorPlan, seated: list[dict[str, Any]], day: date,
                           config: EngineConfig, repeats: int, url: str) -> dict[str, Any]:
    from sqlalchemy import text

    from seatflow.storage.db import make_engine
    from seatflow.storage.floorplans import import_floorplan

    engine = make_engine(url, pool_size=2, max_overflow=0)
    rid = plan.restaurant.id
    try:
        await import_floorplan(engine, plan)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM bookings WHERE restaurant_id = :r"), {"r": rid})
            for b in seated:
                await conn.execute(text(
                    "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                    "occupied_until, status, assignment_state, assignment_state_version) VALUES "
                    "(CAST(:id AS uuid), :r, :p, :s, :e, :u, 'confirmed', 'confirmed', 3)"),
                    {"id": b["id"], "r": rid, "p": b["party"], "s": b["start"], "e": b["end"],
                     "u": b["until"]})
                await conn.execute(text(
                    "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
                    "SELECT CAST(:id AS uuid), :r, t.id, tstzrange(:s, :u, '[)') "
                    "FROM dining_tables t WHERE t.restaurant_id = :r AND t.code = ANY(:codes)"),
                    {"id": b["id"], "r": rid, "s": b["start"], "u": b["until"],
                     "codes": list(b["tables"])})
            held = (await conn.execute(text(
                "SELECT count(*) FROM allocations WHERE restaurant_id = :r"), {"r": rid}
            )).scalar_one()
        now = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
        tz = ZoneInfo(plan.restaurant.timezone)
        dinner = (datetime.combine(day, dt_time(17), tzinfo=tz),
                  datetime.combine(day, dt_time(23), tzinfo=tz))
        out: dict[str, Any] = {"allocations_in_database": int(held)}
        for party in PARTIES:
            await check_availability(engine, rid, party, window=dinner, config=config,
                                     now=now)  # warm the pool
            samples: list[float] = []
            cpu: list[float] = []
            available: list[int] = []
            undecided: list[int] = []
            stopped = 0
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                found = await check_availability(engine, rid, party, window=dinner,
                                                 config=config, now=now)
                samples.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                available.append(len(found.available_starts))
                undecided.append(sum(s.undecided for s in found.slots))
                stopped += found.safety_stop
            # CPU: this process's (client, engine), not PostgreSQL's
            out[f"party_{party}"] = {**timed(samples, cpu),
                                     "available_start_times": available[-1],
                                     "available_min_max_over_runs": [min(available),
                                                                     max(available)],
                                     "undecided_min_max_over_runs": [min(undecided),
                                                                     max(undecided)],
                                     "runs_safety_stopped": stopped,
                                     "start_times": len(found.slots)}
        return out
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM bookings WHERE restaurant_id = :r"), {"r": rid})
        await engine.dispose()


def database_url() -> tuple[str, Path | None]:
    explicit = os.environ.get("DATABASE_URL")
    from seatflow.storage.db import upgrade

    if explicit:
        upgrade(explicit)
        return explicit, None
    from seatflow.storage.embedded import start_embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="seatflow-bench-pg-"))
    url = start_embedded_postgres(tmp / "pg", persistent=False)
    upgrade(url)
    return url, tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few repeats only")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--no-database", action="store_true", help="engine share only")
    parser.add_argument("--out", type=Path, help="where to write the JSON")
    parser.add_argument("--steps", type=int,
                        help="availability_repack_steps (default: EngineConfig's)")
    args = parser.parse_args()
    repeats = 5 if args.quick else 60
    baseline_repeats = 3 if args.quick else 20
    config = EngineConfig()
    if args.steps is not None:
        config = replace(config, availability_repack_steps=args.steps)
    plan = load_floorplan(FLOOR_FILE)
    policy = policy_of(plan)
    day = date(2026, 12, 1)
    snapshot, seated = fill_evening(snapshot_of(plan), policy, day, config, args.seed)
    report: dict[str, Any] = {
        "benchmark": "availability",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "floor": {"file": str(FLOOR_FILE.relative_to(ROOT)), "tables": len(snapshot.tables),
                  "allocations": len(snapshot.allocations), "bookings": len(seated),
                  "day": day.isoformat(), "service": "dinner 17:00-23:00",
                  "slot_minutes": policy.slot_minutes},
        "engine": bench_engine(snapshot, policy, day, config, repeats, baseline_repeats),
    }
    worst = max(report["engine"][f"party_{p}"]["p95_ms"] for p in PARTIES)
    report["targets"] = {"engine_whole_evening_p95_ms": {
        "target": f"< {TARGET_P95_MS:g}", "measured": worst,
        "status": "met" if worst < TARGET_P95_MS else "not met"}}
    if not args.no_database:
        url, tmp = database_url()
        try:
            report["end_to_end"] = asyncio.run(
                bench_end_to_end(plan, seated, day, config, repeats, url))
        finally:
            if tmp is not None:
                import pgserver

                pgserver.get_server(tmp / "pg").cleanup()  # type: ignore[attr-defined]
                shutil.rmtree(tmp, ignore_errors=True)
        worst = max(report["end_to_end"][f"party_{p}"]["p95_ms"] for p in PARTIES)
        report["targets"]["whole_evening_p95_ms"] = {
            "target": f"< {TARGET_P95_MS:g}", "measured": worst,
            "status": "met" if worst < TARGET_P95_MS else "not met"}
    report["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    text = json.dumps(report, indent=2)
    out = args.out or ROOT / "bench" / "results" / (
        "availability-quick.json" if args.quick else "availability-latest.json")
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
