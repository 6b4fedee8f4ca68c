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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.domain.states import SETTLED_STATES

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


async def latency_percentiles(engine: AsyncEngine, ids: list[str]) -> dict[str, float | None]:
    """created -> confirmed over the given bookings (nearest-rank-free: percentile_cont)."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY x) AS p95, "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY x) AS p99, max(x) AS max "
            "FROM (SELECT EXTRACT(EPOCH FROM confirmed_at - created_at) AS x FROM bookings "
            "WHERE id = ANY(CAST(:ids AS uuid[])) AND confirmed_at IS NOT NULL) l"),
            {"ids": ids})).one()
    return {k: None if v is None else round(float(v), 3)
            for k, v in (("p50", row.p50), ("p95", row.p95), ("p99", row.p99),
                         ("max", row.max))}


async def permit_wait_p95_ms(engine: AsyncEngine, ids: list[str]) -> float | None:
    async with engine.connect() as conn:
        value = (await conn.execute(text(
            "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms) FROM permit_intervals "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar()
    return None if value is None else round(float(value), 3)


async def max_concurrency_per_restaurant(engine: AsyncEngine, ids: list[str]) -> dict[str, int]:
    """The most permits of one restaurant held at once by these bookings: a
    sweep over acquire (+1) and release (-1); at equal times releases first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "WITH ev AS ("
            " SELECT restaurant_id, acquired_at AS t, 1 AS d FROM permit_intervals "
            "  WHERE booking_id = ANY(CAST(:ids AS uuid[]))"
            " UNION ALL"
            " SELECT restaurant_id, COALESCE(released_at, clock_timestamp()), -1 "
            "  FROM permit_intervals WHERE booking_id = ANY(CAST(:ids AS uuid[]))) "
            "SELECT restaurant_id, max(c) FROM ("
            " SELECT restaurant_id, sum(d) OVER (PARTITION BY restaurant_id ORDER BY t, d) AS c"
            " FROM ev) s GROUP BY restaurant_id ORDER BY restaurant_id"),
            {"ids": ids})).all()
    return {str(r): int(n) for r, n in rows}


async def double_booked_table_minutes(engine: AsyncEngine, restaurant_ids: list[str]) -> float:
    """Minutes two allocations of one table overlap (the exclusion constraint says 0)."""
    async with engine.connect() as conn:
        value = (await conn.execute(text(
            "SELECT COALESCE(sum(EXTRACT(EPOCH FROM (LEAST(upper(a.occupied), upper(b.occupied)) "
            "- GREATEST(lower(a.occupied), lower(b.occupied)))) / 60), 0) FROM allocations a "
            "JOIN allocations b ON a.table_id = b.table_id AND a.id < b.id "
            "AND a.occupied && b.occupied WHERE a.restaurant_id = ANY(:r)"),
            {"r": restaurant_ids})).scalar()
    return round(float(value or 0), 3)


async def states_of(engine: AsyncEngine, ids: list[str]) -> Counter[str]:
    if not ids:
        return Counter()
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT assignment_state, count(*) FROM bookings WHERE id = ANY(CAST(:ids AS uuid[])) "
            "GROUP BY assignment_state"), {"ids": ids})).all()
    return Counter({str(s): int(n) for s, n in rows})


async def settled_throughput(engine: AsyncEngine, ids: list[str]) -> float | None:
    """Settled bookings per second, first created -> last settled."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT count(settled_at) AS n, EXTRACT(EPOCH FROM max(settled_at) - min(created_at)) "
            "AS span FROM bookings WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).one()
    if not row.n or not row.span:
        return None
    return round(int(row.n) / float(row.span), 2)


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
    async with engine.connect() as conn:
        suppressed = (await conn.execute(text(
            "SELECT COALESCE(sum(duplicates_suppressed), 0) FROM email_outbox "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
        confirmed = set((await conn.execute(text(
            "SELECT id::text FROM bookings WHERE id = ANY(CAST(:ids AS uuid[])) "
            "AND confirmed_at IS NOT NULL"), {"ids": ids})).scalars().all())
        outbox_dups = (await conn.execute(text(
            "SELECT COALESCE(sum(GREATEST(send_attempts - 1, 0)), 0) FROM email_outbox "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
    if mailbox is None:  # SMTP: the outbox is the only record
        return int(outbox_dups), int(suppressed), 0
    counts = mailbox_counts(mailbox, ids)
    duplicates = sum(max(0, n - 1) for n in counts.values())
    missing = sum(1 for b in confirmed if counts.get(b, 0) == 0)
    return duplicates, int(suppressed), missing


# -- setup ---------------------------------------------------------------


def restaurant_ids(count: int) -> list[str]:
    return [f"{RESTAURANT_PREFIX}{i}" for i in range(1, count + 1)]


def floorplan_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from seatflow.config import project_root

    for base in (project_root(), Path(__file__).resolve().parents[2]):
        if (base / DEFAULT_FLOORPLAN).exists():
            return base / DEFAULT_FLOORPLAN
    raise LoadtestError(f"sample floor plan {DEFAULT_FLOORPLAN} not found; pass --floorplan FILE")


async def ensure_restaurants(engine: AsyncEngine, ids: list[str], template: Path) -> tuple[int, str]:
    """Import missing restaurants as copies of `template`; returns (imported, timezone)."""
    from seatflow.floorplan import import_floorplan, parse_floorplan

    data = json.loads(template.read_text())
    async with engine.connect() as conn:
        existing = set((await conn.execute(
            text("SELECT id FROM restaurants WHERE id = ANY(:ids)"), {"ids": ids}
        )).scalars().all())
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
    async with engine.connect() as conn:
        latest = (await conn.execute(
            text("SELECT max(start_at) FROM bookings WHERE restaurant_id = ANY(:ids)"),
            {"ids": ids})).scalar()
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
    from seatflow.bookings_service import create_booking
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.storage.bookings import NewBooking

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
    result.unsettled = result.created - sum(states[s] for s in SETTLED_STATES)
    result.throughput_per_second = await settled_throughput(engine, created)
    result.latency_seconds = await latency_percentiles(engine, created)
    result.permit_wait_p95_ms = await permit_wait_p95_ms(engine, created)
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
        async with engine.connect() as conn:
            pending = (await conn.execute(text(
                "SELECT count(*) FROM email_outbox WHERE status = 'pending' "
                "AND booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
        if not pending:
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
        settled = sum(states[s] for s in SETTLED_STATES) + rejected()
        progress.update(task, completed=settled, states=short_states(states))
        if creating.done() and settled >= total:
            break
        if time.monotonic() > deadline:
            console.print("[yellow]stopped waiting: the timeout passed[/]")
            break
        await asyncio.sleep(poll)
    await creating


def short_states(states: Counter[str]) -> str:
    shown = [f"{s} {states[s]}" for s in ("confirmed", "manual_review", "failed") if states[s]]
    busy = sum(n for s, n in states.items() if s not in SETTLED_STATES)
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
           "max_concurrency_per_restaurant", "permit_wait_p95_ms", "plan_bookings", "render",
           "run_loadtest", "settled_throughput", "states_of"]
