"""`seatflow loadtest`: concurrent bookings against the running stack.

Creates restaurants `loadtest-1..R` from a sample floor plan when missing,
books N dinners over them (all at once, bounded by `concurrency`, or at a
steady `rate` per second) through the real intake (`create_booking`: a row,
then a workflow), waits until every booking settled, and measures from the
database: throughput, latency, permit waits, the most bookings of one
restaurant ever between search and confirm at once (from `permit_intervals`),
outcomes, double-booked table-minutes and duplicate emails.

Bookings are spread so that a restaurant can seat them all (two per
15-minute dinner slot per restaurant per evening, parties of 2 to 4, on an
evening no earlier run used), while bookings of one restaurant still arrive
together and compete for the same tables.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.domain.states import AUTOMATIC_OUTCOMES, SETTLED
from seatflow.storage.stats import (
    double_booked_table_minutes,
    email_outbox_figures,
    existing_restaurants,
    latency_percentiles,
    latest_booking_start,
    max_concurrency_per_restaurant,
    pending_emails,
    settled_throughput,
    slot_figures,
    states_of,
)

DEFAULT_FLOORPLAN = Path("examples") / "floorplans" / "harbour-kitchen.json"
RESTAURANT_PREFIX = "loadtest-"
DINNER_SLOTS = tuple(f"{h:02d}:{m:02d}" for h in range(17, 21) for m in (0, 15, 30, 45)) + (
    "21:00",)
PER_SLOT = 2
PARTIES = (2, 2, 2, 3, 4, 4)


class LoadtestError(RuntimeError):
    """The load test cannot run; the message says what to do."""


@dataclass(frozen=True)
class PlannedBooking:
    restaurant_id: str
    party_size: int
    start: datetime


@dataclass
class LoadtestResult:
    bookings: int
    restaurants: int
    concurrency: int
    rate_per_second: float | None
    created: int = 0
    rejected: int = 0
    unsettled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    throughput_per_second: float | None = None
    latency_seconds: dict[str, float | None] = field(default_factory=dict)
    permit_wait_p95_ms: float | None = None
    max_concurrency: int | None = None
    max_concurrency_per_restaurant: dict[str, int] = field(default_factory=dict)
    max_parallel: int | None = None
    double_booked_table_minutes: float = 0.0
    duplicate_emails: int = 0
    duplicates_suppressed: int = 0
    missing_emails: int = 0
    booking_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def invariants_hold(self) -> bool:
        return self.double_booked_table_minutes == 0 and self.duplicate_emails == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("booking_ids")
        data["invariants_hold"] = self.invariants_hold
        return data


# -- measurements shared with bench/pipeline.py ---------------------------


# The figures themselves are read by seatflow.storage.stats (imported above).


def mailbox_counts(mailbox: Path, ids: list[str]) -> dict[str, int]:
    """Messages in the file mailbox per booking (files are named `{booking_id}-{kind}.eml`)."""
    counts = dict.fromkeys(ids, 0)
    if mailbox.is_dir():
        for path in mailbox.glob("*.eml"):
            booking_id = path.name[:36]
            if booking_id in counts:
                counts[booking_id] += 1
    return counts


async def email_figures(
    engine: AsyncEngine, mailbox: Path | None, ids: list[str]
) -> tuple[int, int, int]:
    """(duplicates delivered, duplicate sends suppressed, confirmed bookings without email)."""
    outbox = await email_outbox_figures(engine, ids)
    if mailbox is None:  # SMTP: the outbox is the only record
        return outbox.extra_sends, outbox.duplicates_suppressed, 0
    counts = mailbox_counts(mailbox, ids)
    duplicates = sum(max(0, n - 1) for n in counts.values())
    missing = sum(1 for b in outbox.confirmed_ids if counts.get(b, 0) == 0)
    return duplicates, outbox.duplicates_suppressed, missing


# -- setup ---------------------------------------------------------------


def restaurant_ids(count: int) -> list[str]:
    return [f"{RESTAURANT_PREFIX}{i}" for i in range(1, count + 1)]


def floorplan_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from seatflow.config import project_root

    for base in (project_root(), Path(__file__).resolve().parents[3]):
        if (base / DEFAULT_FLOORPLAN).exists():
            return base / DEFAULT_FLOORPLAN
    raise LoadtestError(f"sample floor plan {DEFAULT_FLOORPLAN} not found; pass --floorplan FILE")


async def ensure_restaurants(engine: AsyncEngine, ids: list[str], template: Path) -> tuple[int, str]:
    """Import missing restaurants as copies of `template`; returns (imported, timezone)."""
    from seatflow.floorplan import parse_floorplan
    from seatflow.storage.floorplans import import_floorplan

    data = json.loads(template.read_text())
    existing = await existing_restaurants(engine, ids)
    imported = 0
    for rid in ids:
        if rid in existing:
            continue
        copy = json.loads(json.dumps(data))
        copy["restaurant"]["id"] = rid
        copy["restaurant"]["name"] = f"Load test {rid.removeprefix(RESTAURANT_PREFIX)}"
        await import_floorplan(engine, parse_floorplan(copy, source=f"{template} as {rid}"))
        imported += 1
    return imported, str(data["restaurant"]["timezone"])


async def first_free_evening(engine: AsyncEngine, ids: list[str], tz: ZoneInfo) -> date:
    """The first evening after every booking an earlier run made at these restaurants."""
    latest = await latest_booking_start(engine, ids)
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    if latest is None:
        return tomorrow
    last: date = latest.astimezone(tz).date()
    return max(tomorrow, last + timedelta(days=1))


def plan_bookings(
    count: int, ids: list[str], first_evening: date, tz: ZoneInfo, rng: random.Random
) -> list[PlannedBooking]:
    """Round-robin over restaurants; per restaurant PER_SLOT bookings per dinner
    slot, then the next evening: every booking fits a 40-table floor plan."""
    per_evening = len(DINNER_SLOTS) * PER_SLOT
    planned = []
    for k in range(count):
        rid = ids[k % len(ids)]
        j = k // len(ids)
        evening = first_evening + timedelta(days=j // per_evening)
        hour, minute = (int(x) for x in DINNER_SLOTS[(j % per_evening) // PER_SLOT].split(":"))
        start = datetime(evening.year, evening.month, evening.day, hour, minute, tzinfo=tz)
        planned.append(PlannedBooking(rid, rng.choice(PARTIES), start))
    return planned


# -- the run -------------------------------------------------------------


async def run_loadtest(
    engine: AsyncEngine,
    client: Client,
    *,
    bookings: int,
    restaurants: int,
    task_queue: str,
    concurrency: int = 20,
    rate: float | None = None,
    mailbox: Path | None = None,
    floorplan: Path | None = None,
    timeout: float = 600.0,
    console: Console | None = None,
    show_progress: bool = True,
    seed: int | None = None,
    max_parallel: int | None = None,
) -> LoadtestResult:
    from seatflow.domain.intake import NewBooking
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.service.bookings import create_booking

    if bookings < 1 or restaurants < 1 or concurrency < 1:
        raise LoadtestError("--bookings, --restaurants and --concurrency must be at least 1")
    if rate is not None and rate <= 0:
        raise LoadtestError("--rate must be positive")
    console = console or Console(stderr=True)
    ids = restaurant_ids(restaurants)
    imported, tz_name = await ensure_restaurants(engine, ids, floorplan_path(floorplan))
    if imported:
        console.print(f"imported {imported} restaurant(s) {ids[0]}..{ids[-1]}")
    tz = ZoneInfo(tz_name)
    evening = await first_free_evening(engine, ids, tz)
    rng = random.Random(seed if seed is not None else evening.toordinal())
    planned = plan_bookings(bookings, ids, evening, tz, rng)
    result = LoadtestResult(bookings, restaurants, concurrency, rate, max_parallel=max_parallel)
    created: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()

    async def book(k: int, b: PlannedBooking, progress: Progress | None, task: Any) -> None:
        if rate is not None:
            await asyncio.sleep(max(0.0, started + k / rate - time.monotonic()))
        async with gate:
            try:
                made = await create_booking(engine, client, NewBooking(
                    restaurant_id=b.restaurant_id, party_size=b.party_size, start=b.start,
                    guest_name=f"Load {k}", guest_email=f"load-{k}@example.com",
                ), task_queue=task_queue)
            except InvalidBooking:
                result.rejected += 1
            else:
                created.append(made.booking_id)
        if progress is not None:
            progress.advance(task)

    progress = (Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[states]}"), TimeElapsedColumn(),
                         console=console, disable=not show_progress))
    with progress:
        created_task = progress.add_task("created", total=bookings, states="")
        settled_task = progress.add_task("settled", total=bookings, states="")
        sending = asyncio.gather(*(book(k, b, progress, created_task)
                                   for k, b in enumerate(planned)))
        deadline = started + timeout
        await wait_until_settled(
            engine, created, total=bookings, rejected=lambda: result.rejected,
            creating=sending, progress=progress, task=settled_task, deadline=deadline,
            console=console, poll=0.25)
    result.seconds = round(time.monotonic() - started, 2)
    await _drain_email_outbox(engine, created, deadline=min(deadline, time.monotonic() + 60))
    result.booking_ids = created
    result.created = len(created)
    states = await states_of(engine, created)
    result.outcomes = dict(sorted(states.items()))
    result.unsettled = result.created - sum(states[s] for s in SETTLED)
    result.throughput_per_second = await settled_throughput(engine, created)
    result.latency_seconds = await latency_percentiles(engine, created)
    result.permit_wait_p95_ms = (await slot_figures(engine, created))["wait_ms"]["p95"]
    result.max_concurrency_per_restaurant = await max_concurrency_per_restaurant(engine, created)
    result.max_concurrency = max(result.max_concurrency_per_restaurant.values(), default=None)
    result.double_booked_table_minutes = await double_booked_table_minutes(engine, ids)
    (result.duplicate_emails, result.duplicates_suppressed,
     result.missing_emails) = await email_figures(engine, mailbox, created)
    return result


async def _drain_email_outbox(engine: AsyncEngine, ids: list[str], deadline: float) -> None:
    """Confirmation emails go out just after the state settles: wait for the
    outbox to drain before counting them."""
    while time.monotonic() < deadline:
        if not await pending_emails(engine, ids):
            return
        await asyncio.sleep(0.25)


async def wait_until_settled(
    engine: AsyncEngine,
    ids: list[str],
    *,
    total: int,
    rejected: Callable[[], int],
    creating: asyncio.Future[Any],
    progress: Progress,
    task: Any,
    deadline: float,
    console: Console,
    poll: float,
) -> None:
    """Show bookings settling (while `creating` still adds to `ids`) until all
    `total` are settled or refused, or the deadline passes. Shared by the load
    test and the demo."""
    while True:
        states = await states_of(engine, list(ids))
        settled = sum(states[s] for s in SETTLED) + rejected()
        progress.update(task, completed=settled, states=short_states(states))
        if creating.done() and settled >= total:
            break
        if time.monotonic() > deadline:
            console.print("[yellow]stopped waiting: the timeout passed[/]")
            break
        await asyncio.sleep(poll)
    await creating


def short_states(states: Counter[str]) -> str:
    shown = [f"{s} {states[s]}" for s in AUTOMATIC_OUTCOMES if states[s]]
    busy = sum(n for s, n in states.items() if s not in SETTLED)
    if busy:
        shown.append(f"in flight {busy}")
    return ", ".join(shown)


def render(result: LoadtestResult) -> Any:
    from rich.table import Table

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} s"

    table = Table(title=f"loadtest: {result.bookings} bookings over {result.restaurants} "
                        f"restaurant(s)", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    lat = result.latency_seconds
    mp = f" (MAX_PARALLEL {result.max_parallel})" if result.max_parallel else ""
    rows = [
        ("created / refused at intake", f"{result.created} / {result.rejected}"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in result.outcomes.items()) or "-"),
        ("still in flight", str(result.unsettled)),
        ("wall time", f"{result.seconds:.1f} s"),
        ("throughput (settled/s)", "-" if result.throughput_per_second is None
         else f"{result.throughput_per_second:.2f}"),
        ("latency P50 / P95 / P99", (f"{secs(lat.get('p50'))} / {secs(lat.get('p95'))} / "
                                    f"{secs(lat.get('p99'))}")),
        ("permit wait P95", "-" if result.permit_wait_p95_ms is None
         else f"{result.permit_wait_p95_ms:.1f} ms"),
        ("max concurrency per restaurant" + mp, "-" if result.max_concurrency is None
         else str(result.max_concurrency)),
        ("double-booked table-minutes (must be 0)", f"{result.double_booked_table_minutes:g}"),
        ("duplicate emails (must be 0)", str(result.duplicate_emails)),
        ("duplicate sends suppressed", str(result.duplicates_suppressed)),
        ("confirmed without email", str(result.missing_emails)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


__all__ = ["LoadtestError", "LoadtestResult", "PlannedBooking", "double_booked_table_minutes",
           "email_figures", "ensure_restaurants", "first_free_evening", "latency_percentiles",
           "max_concurrency_per_restaurant", "plan_bookings", "render",
           "run_loadtest", "settled_throughput", "slot_figures", "states_of"]
