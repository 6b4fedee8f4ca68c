"""`seatflow demo`: a realistic evening at Harbour Kitchen, end to end.

Brings the local stack up (`seatflow.devstack`), imports the sample floor
plan, books an evening of dinners through the real pipeline (PostgreSQL rows,
one Temporal workflow per booking, the worker seating them), shows progress
from created to settled, and prints a short summary with the Temporal UI
address. The stack keeps running afterwards for exploring.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from seatflow import devstack
from seatflow.config import load_flags, project_root
from seatflow.domain.states import SETTLED

SAMPLE_FLOORPLAN = Path("examples") / "floorplans" / "harbour-kitchen.json"
V3_FLAG = "FEATURE_ASSIGNMENT_PIPELINE_V3"
MANUAL_REVIEW_QUERY = 'AssignmentState="manual_review"'

# How a neighbourhood restaurant's dinner book looks: mostly couples, some
# threes and fours, a few larger tables and a couple of big parties.
PARTY_WEIGHTS = {2: 56, 3: 13, 4: 19, 5: 4, 6: 4, 7: 1.5, 8: 1.5}
BIG_PARTIES = (9, 10)
# Arrival times in 15-minute slots, 17:00..22:00. 120 bookings fill 40 tables
# about three times over, so the book is spread the way a full restaurant
# spreads it (early and late sittings), with a mild peak around 19:00.
SLOT_WEIGHTS = {
    "17:00": 7, "17:15": 5, "17:30": 6, "17:45": 5, "18:00": 6, "18:15": 5, "18:30": 6,
    "18:45": 5, "19:00": 7, "19:15": 5, "19:30": 6, "19:45": 5, "20:00": 6, "20:15": 5,
    "20:30": 6, "20:45": 5, "21:00": 5, "21:15": 4, "21:30": 4, "21:45": 3, "22:00": 3,
}
DEMO_P95_TARGET_S = 0.5  # created -> confirmed, steady arrivals on a quiet machine
SLOT_WAIT_TARGET_MS = 100.0
ZONE_WISHES = {"window": 5, "terrace": 3, "bar": 2}  # out of 100 bookings
GUESTS = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hugo", "Isla", "Jonah",
          "Kemi", "Leo", "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")


class DemoError(RuntimeError):
    """The demo cannot run; the message says what to do."""


@dataclass(frozen=True)
class DemoBooking:
    party_size: int
    start: datetime
    zone: str | None
    guest_name: str
    guest_email: str


@dataclass
class DemoSummary:
    restaurant_id: str
    evening: date
    bookings: int
    states: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, created -> confirmed
    rejected: int = 0  # refused at intake (none expected)
    seconds: float = 0.0
    ui_url: str | None = None
    namespace: str = "default"
    slot_wait_p95_ms: float | None = None  # waiting for a restaurant slot (permit_intervals)

    @property
    def unsettled(self) -> int:
        return self.bookings - sum(self.states[s] for s in SETTLED)

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    @property
    def manual_review_url(self) -> str | None:
        if not self.ui_url:
            return None
        return (f"{self.ui_url}/namespaces/{self.namespace}/workflows"
                f"?query={quote(MANUAL_REVIEW_QUERY)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "restaurant_id": self.restaurant_id, "evening": self.evening.isoformat(),
            "bookings": self.bookings, "confirmed": self.states["confirmed"],
            "manual_review": self.states["manual_review"], "failed": self.states["failed"],
            "unsettled": self.unsettled, "rejected_at_intake": self.rejected,
            "latency_p50_s": self.percentile(50), "latency_p95_s": self.percentile(95),
            "slot_wait_p95_ms": self.slot_wait_p95_ms,
            "seconds": round(self.seconds, 1), "ui_url": self.ui_url,
            "manual_review_url": self.manual_review_url,
            "targets": self.targets(),
        }

    def targets(self) -> dict[str, dict[str, Any]]:
        """The pipeline's latency targets for a demo evening, met or not."""
        p95, wait = self.percentile(95), self.slot_wait_p95_ms
        return {
            "latency_p95": {"value": p95, "target": f"< {DEMO_P95_TARGET_S} s",
                            "met": p95 is not None and p95 < DEMO_P95_TARGET_S},
            "slot_wait_p95": {"value": wait, "target": f"< {SLOT_WAIT_TARGET_MS} ms",
                              "met": wait is not None and wait < SLOT_WAIT_TARGET_MS},
        }


def plan_evening(evening: date, tz: ZoneInfo, count: int, rng: random.Random) -> list[DemoBooking]:
    """`count` dinner bookings for one evening, in the order guests make them."""
    parties = rng.choices(list(PARTY_WEIGHTS), weights=list(PARTY_WEIGHTS.values()), k=count)
    for i, big in enumerate(BIG_PARTIES[: max(0, count // 50)]):
        parties[i] = big
    bookings = []
    for party in parties:
        slot = rng.choices(list(SLOT_WEIGHTS), weights=list(SLOT_WEIGHTS.values()))[0]
        if party >= 7:
            slot = rng.choice(["18:30", "19:00", "19:30", "20:00"])  # big tables book prime time
        hour, minute = (int(x) for x in slot.split(":"))
        zone = "private" if party >= 9 and rng.random() < 0.5 else None
        if zone is None and party <= 4 and rng.random() < sum(ZONE_WISHES.values()) / 100:
            zone = rng.choices(list(ZONE_WISHES), weights=list(ZONE_WISHES.values()))[0]
        name = f"{rng.choice(GUESTS)} {chr(ord('A') + rng.randrange(26))}."
        email = f"{name.split()[0].lower()}.{rng.randrange(1000, 9999)}@example.com"
        start = datetime(evening.year, evening.month, evening.day, hour, minute, tzinfo=tz)
        bookings.append(DemoBooking(party, start, zone, name, email))
    rng.shuffle(bookings)
    return bookings


def _floorplan_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for base in (project_root(), Path(__file__).resolve().parents[2]):
        if (base / SAMPLE_FLOORPLAN).exists():
            return base / SAMPLE_FLOORPLAN
    raise DemoError(f"sample floor plan {SAMPLE_FLOORPLAN} not found; pass --floorplan FILE")


def _demo_worker_env() -> dict[str, str]:
    """V3 is the path the demo shows, unless the user chose the flag themselves."""
    flags = load_flags(_env_file=project_root() / ".env")
    return {} if "v3" in flags.model_fields_set else {V3_FLAG: "true"}


def run_demo(bookings: int = 120, *, floorplan: Path | None = None, seed: int | None = None,
             workers: int | None = None, timeout: float = 300.0, console: Console | None = None,
             concurrency: int = 8, rate: float = 8.0) -> DemoSummary:
    """Bring the stack up, import the sample restaurant, book an evening, summarise."""
    console = console or Console()
    started = time.monotonic()
    path = _floorplan_path(floorplan)
    with console.status("starting the local stack (PostgreSQL, Temporal, worker)..."):
        stack = devstack.up(workers, worker_env=_demo_worker_env())
    broken = [w for w in stack.workers if w.state != "running"]
    if broken or not stack.running:
        detail = "; ".join(f"{w.name} {w.detail}" for w in broken) or "see `seatflow dev status`"
        raise DemoError(f"the stack is not fully up: {detail}")
    console.print(f"stack up in {time.monotonic() - started:.1f} s - "
                  f"Temporal UI {stack.ui_url or stack.temporal_address}")
    summary = asyncio.run(_book_evening(stack, path, bookings, seed, timeout, console,
                                        concurrency, rate))
    summary.seconds = time.monotonic() - started
    summary.ui_url = stack.ui_url
    summary.namespace = stack.namespace
    return summary


async def _book_evening(stack: devstack.StackStatus, path: Path, count: int, seed: int | None,
                        timeout: float, console: Console, concurrency: int,
                        rate: float = 0.0) -> DemoSummary:
    from temporalio.client import Client

    from seatflow.bookings_service import create_booking
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.floorplan import import_floorplan, load_floorplan
    from seatflow.loadtest import permit_wait_p95_ms, states_of, wait_until_settled
    from seatflow.storage.bookings import NewBooking
    from seatflow.storage.db import make_engine
    from seatflow.storage.stats import confirm_latencies

    assert stack.database_url and stack.temporal_address
    plan = load_floorplan(path)
    restaurant_id = plan.restaurant.id
    tz = ZoneInfo(plan.restaurant.timezone)
    engine = make_engine(stack.database_url, pool_size=concurrency + 2, max_overflow=2)
    try:
        imported = await import_floorplan(engine, plan)
        console.print(f"imported {plan.restaurant.name}: {len(plan.tables)} tables, "
                      f"{imported.total_capacity} seats")
        evening = await _free_evening(engine, restaurant_id, tz)
        rng = random.Random(seed if seed is not None else evening.toordinal())
        wanted = plan_evening(evening, tz, count, rng)
        client = await Client.connect(stack.temporal_address, namespace=stack.namespace)
        summary = DemoSummary(restaurant_id, evening, count)
        ids: list[str] = []
        gate = asyncio.Semaphore(concurrency)


        async def book(index: int, b: DemoBooking) -> None:
            # Guests book one after another, not all in the same instant: `rate`
            # bookings per second (0: one burst, to see the queueing).
            if rate > 0:
                await asyncio.sleep(max(0.0, first_at + index / rate - time.monotonic()))
            async with gate:
                try:
                    created = await create_booking(engine, client, NewBooking(
                        restaurant_id=restaurant_id, party_size=b.party_size, start=b.start,
                        zone_preference=b.zone, guest_name=b.guest_name,
                        guest_email=b.guest_email,
                    ), task_queue=stack.task_queue)
                except InvalidBooking:
                    summary.rejected += 1
                else:
                    ids.append(created.booking_id)
                progress.advance(created_task)

        flags = load_flags(_env_file=project_root() / ".env")
        pipeline = "the V3 pipeline" if flags.v3_enabled_for(plan.restaurant.id) or \
            "v3" not in flags.model_fields_set else "the legacy planner"
        if flags.shadow and pipeline == "the legacy planner":
            pipeline += " with V3 in shadow mode"
        console.print(f"booking {count} dinners for {evening:%A %d %B} "
                      f"({plan.restaurant.timezone}) through {pipeline}")
        with Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[states]}"), TimeElapsedColumn(),
                      console=console) as progress:
            created_task = progress.add_task("created", total=count, states="")
            settled_task = progress.add_task("settled", total=count, states="")
            first_at = time.monotonic()
            creating = asyncio.gather(*(book(i, b) for i, b in enumerate(wanted)))
            await wait_until_settled(
                engine, ids, total=count, rejected=lambda: summary.rejected,
                creating=creating, progress=progress, task=settled_task,
                deadline=time.monotonic() + timeout, console=console, poll=0.4)
        summary.states = await states_of(engine, ids)
        summary.latencies = await confirm_latencies(engine, ids)
        summary.slot_wait_p95_ms = await permit_wait_p95_ms(engine, ids)
        return summary
    finally:
        await engine.dispose()


async def _free_evening(engine: Any, restaurant_id: str, tz: ZoneInfo) -> date:
    """Tonight if dinner is still ahead, else the next evening no earlier demo has booked."""
    from seatflow.storage.stats import bookings_starting_between

    now = datetime.now(tz)
    evening = now.date() if now.hour < 16 else now.date() + timedelta(days=1)
    for _ in range(60):
        begin = datetime(evening.year, evening.month, evening.day, 17, tzinfo=tz)
        if not await bookings_starting_between(engine, restaurant_id, begin,
                                               begin + timedelta(hours=6)):
            return evening
        evening += timedelta(days=1)
    return evening


def print_summary(summary: DemoSummary, console: Console) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    n = summary.bookings or 1
    table = Table(title=f"{summary.restaurant_id}, evening of {summary.evening:%a %d %b %Y}",
                  show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("bookings", str(summary.bookings))
    table.add_row("confirmed", f"{summary.states['confirmed']} "
                               f"({summary.states['confirmed'] / n:.0%})")
    table.add_row("manual review", str(summary.states["manual_review"]))
    table.add_row("failed", str(summary.states["failed"]))
    if summary.unsettled:
        table.add_row("still in flight", str(summary.unsettled))
    if summary.rejected:
        table.add_row("refused at intake", str(summary.rejected))
    table.add_row("latency P50 (created -> confirmed)", seconds(summary.percentile(50)))
    table.add_row("latency P95", seconds(summary.percentile(95)))
    wait = summary.slot_wait_p95_ms
    table.add_row("slot wait P95", "-" if wait is None else f"{wait:.0f} ms")
    for name, t in summary.targets().items():
        table.add_row(f"target {name.replace('_', ' ')} {t['target']}",
                      "met" if t["met"] else "NOT met")
    table.add_row("demo took", f"{summary.seconds:.1f} s")
    console.print()
    console.print(table)
    console.print()
    if summary.ui_url:
        console.print(f"Temporal UI:   {summary.ui_url}")
        console.print(f"manual review: filter with  {MANUAL_REVIEW_QUERY}  or open")
        console.print(f"               {summary.manual_review_url}")
    console.print("inspect:       seatflow bookings show ID   |   seatflow review list")
    console.print("the stack keeps running; stop it with:  seatflow dev down")


def demo_command(
    bookings: Annotated[int, typer.Option(min=1, help="How many bookings to make.")] = 120,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the date).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Worker processes to run (default: one per core).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for bookings to settle.")]
    = 300.0,
    floorplan: Annotated[Path | None, typer.Option(help="Floor plan to import instead of "
                                                        "the sample restaurant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    rate: Annotated[float, typer.Option(
        min=0, help="Bookings made per second (0: all at once).")] = 8.0,
) -> None:
    """Bring the local stack up and book a realistic evening through the pipeline."""
    console = Console(stderr=as_json)
    try:
        summary = run_demo(bookings, floorplan=floorplan, seed=seed, workers=workers,
                           timeout=timeout, console=console, rate=rate)
    except (DemoError, devstack.DevStackError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, console)
    if summary.unsettled:
        raise typer.Exit(3)


__all__ = ["DemoBooking", "DemoError", "DemoSummary", "demo_command", "plan_evening",
           "print_summary", "run_demo"]
