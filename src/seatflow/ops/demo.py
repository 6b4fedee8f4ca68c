"""`seatflow demo`: a well-run evening at Harbour Kitchen, end to end.

Brings the local stack up (`seatflow.ops.devstack`), imports the sample floor
plan and books an evening of dinners through the real pipeline (PostgreSQL
rows, one Temporal workflow per booking, the worker seating them), the way
guests book:

1. The phone book, taken before online booking opens: a party of 20 asks
   for a time, availability has none for them (no plan of at most
   `SEATFLOW_MAX_TABLES` joined tables holds 20), and the host accepts it
   anyway, as the origin system accepted everything; so do a few small phone
   bookings. The party of 20 uses its automatic attempts and waits in manual
   review; the demo's operator looks at the floor, picks free tables to push
   together, and seats it by running `seatflow review assign ... --force`
   (the CLI itself, printed as it runs).
2. The evening's guests, `rate` a second: each asks availability for the
   time they want (`seatflow.availability.check_start`), takes it or the
   nearest offered time within `tolerance`, or goes away; the booking itself
   is made with `require_availability` (what the HTTP API does), so a time
   taken meanwhile is refused and the guest is offered the nearest again.
3. One guest cancels (`seatflow bookings cancel`, printed as it runs).

The summary counts every guest (requested = booked + went away), the states
of every booking, and the latency created -> confirmed of the bookings the
pipeline seated; `seatflow report` afterwards shows the service's targets.
`overbook=True` keeps the older evening: everyone is accepted without asking,
which shows re-packing and the manual-review queue under pressure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from seatflow.config import load_flags, project_root
from seatflow.domain.planning import BookingRequest, EngineConfig, Mobility, RestaurantSnapshot
from seatflow.domain.states import SETTLED
from seatflow.ops import devstack

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

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

# The well-run evening's cast besides the online guests.
OPERATOR_PARTY = 20  # more than any automatic plan of the sample floor can seat
OPERATOR_PARTY_TIMES = ("18:30", "19:00", "19:30")
OPERATOR_ACTOR = "demo-operator"
PHONE_SHARE = 30  # one small phone booking per this many guests (at least one)
TOLERANCE_MINUTES = 45  # a guest takes an offered time this close to the one asked for
# Bounds the operator's search for tables to push together on a large floor.
MAX_OPERATOR_TABLES = 8
MAX_OPERATOR_CANDIDATES = 50_000
# What the Temporal SDK's rare crash at interpreter exit prints (tests/run.py
# guards the test runner against the same crash).
EXIT_CRASH_MARK = "Python runtime state: finalizing"

ONLINE, PHONE = "online", "phone"


class DemoError(RuntimeError):
    """The demo cannot run; the message says what to do."""


@dataclass(frozen=True)
class DemoBooking:
    party_size: int
    start: datetime
    zone: str | None
    guest_name: str
    guest_email: str
    # online: asks availability first; phone: accepted without the check.
    channel: str = ONLINE


@dataclass
class CliStep:
    """A `seatflow` command the demo ran, as a person would type it, and its outcome."""

    command: str
    exit_code: int
    output: str
    booking_id: str
    party_size: int
    tables: list[str] = field(default_factory=list)  # the booking's tables afterwards
    state: str | None = None  # the booking's state afterwards
    # The process hit the Temporal SDK's rare crash at interpreter exit after
    # the command had finished (the state above is what counts then).
    crashed_at_exit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "exit_code": self.exit_code, "output": self.output,
                "booking_id": self.booking_id, "party_size": self.party_size,
                "tables": self.tables, "state": self.state,
                "crashed_at_exit": self.crashed_at_exit}


@dataclass
class DemoSummary:
    restaurant_id: str
    evening: date
    bookings: int  # bookings made (the booked guests)
    mode: str = "evening"  # evening | overbook
    requested: int = 0  # guests who asked for a table
    at_time_asked: int = 0  # online guests booked at the time they asked for
    offered: int = 0  # online guests offered other times (their own was not available)
    took_offer: int = 0  # ... who booked one of them
    went_away: int = 0  # online guests who booked nothing
    phone: int = 0  # phone / walk-in bookings made without the check
    tolerance_minutes: int = TOLERANCE_MINUTES  # how far from their time guests accept
    states: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, created -> confirmed
    rejected: int = 0  # refused at intake as invalid (none expected)
    seconds: float = 0.0
    ui_url: str | None = None
    namespace: str = "default"
    slot_wait_p95_ms: float | None = None  # waiting for a restaurant slot (permit_intervals)
    operator: CliStep | None = None  # the party an operator seated
    cancellation: CliStep | None = None  # the guest who cancelled
    operator_queue: list[CliStep] = field(default_factory=list)  # other operator decisions
    notes: list[str] = field(default_factory=list)  # what did not go to plan, for people

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
            "mode": self.mode,
            "restaurant_id": self.restaurant_id, "evening": self.evening.isoformat(),
            "requested": self.requested, "at_time_asked": self.at_time_asked,
            "offered": self.offered, "took_offer": self.took_offer,
            "went_away": self.went_away, "phone": self.phone,
            "tolerance_minutes": self.tolerance_minutes,
            "bookings": self.bookings, "confirmed": self.states["confirmed"],
            "manual_review": self.states["manual_review"], "failed": self.states["failed"],
            "cancelled": self.states["cancelled"],
            "unsettled": self.unsettled, "rejected_at_intake": self.rejected,
            "operator_assigned": self.operator.to_dict() if self.operator else None,
            "cancellation": self.cancellation.to_dict() if self.cancellation else None,
            "operator_queue": [step.to_dict() for step in self.operator_queue],
            "notes": list(self.notes),
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


def plan_guests(evening: date, tz: ZoneInfo, count: int, rng: random.Random) -> list[DemoBooking]:
    """The well-run evening's `count` guests: the dinner book of `plan_evening`,
    with one party of OPERATOR_PARTY and a few small phone bookings (one per
    PHONE_SHARE guests, at least one) taken by phone. Phone bookings come
    first, the party of OPERATOR_PARTY at their head."""
    if count < 3:
        raise DemoError(f"a well-run evening needs at least 3 guests (a large party, a phone "
                        f"booking and an online guest), got {count}")
    guests = plan_evening(evening, tz, count - 1, rng)
    hour, minute = (int(x) for x in rng.choice(OPERATOR_PARTY_TIMES).split(":"))
    name = f"{rng.choice(GUESTS)} {chr(ord('A') + rng.randrange(26))}."
    big = DemoBooking(
        OPERATOR_PARTY, datetime(evening.year, evening.month, evening.day, hour, minute, tzinfo=tz),
        None, name, f"{name.split()[0].lower()}.{rng.randrange(1000, 9999)}@example.com", PHONE)
    phone_count = max(1, count // PHONE_SHARE)
    small = [i for i, g in enumerate(guests) if g.party_size <= 4][:phone_count]
    phone = [replace(guests[i], channel=PHONE) for i in small]
    online = [g for i, g in enumerate(guests) if i not in set(small)]
    return [big, *phone, *online]


def operator_tables(snapshot: RestaurantSnapshot, request: BookingRequest,
                    config: EngineConfig) -> tuple[str, ...] | None:
    """The tables an operator gives a party the pipeline could not seat: free
    movable tables of one zone that touch each other (or one free table) and
    hold the party. Sets that leave at most `config.max_overage` seats empty
    come first, then the fewest tables, then the fewest empty seats; a larger
    table than the rules allow (a couple at a free six-top on a full night)
    only when nothing else holds the party. Every candidate passes the forced
    manual-assignment check (`validate_plan` with the overrides `--force`
    allows), so the CLI will accept it. None when the floor has no such set."""
    from seatflow.engine.floor import Floor
    from seatflow.engine.validation import validate_plan

    floor = Floor(snapshot)
    free = {t for t in floor.free_tables(request.start, request.end, (request.booking_id,))
            if floor.tables[t].mobility == Mobility.MOVABLE or floor.tables[t].capacity
            >= request.party_size}  # a fixed table can seat a party alone, never joined
    party = request.party_size
    seen: set[frozenset[str]] = set()
    found: list[tuple[bool, int, int, tuple[str, ...]]] = []
    frontier = [frozenset([t]) for t in sorted(free)]
    while frontier and len(seen) < MAX_OPERATOR_CANDIDATES:
        grown: list[frozenset[str]] = []
        for tables in frontier:
            if tables in seen:
                continue
            seen.add(tables)
            seats = sum(floor.tables[t].capacity for t in tables)
            if seats >= party:
                empty = seats - party
                found.append((empty > config.max_overage, len(tables), empty,
                              tuple(sorted(tables))))
                continue  # adding tables only adds empty seats
            if len(tables) >= MAX_OPERATOR_TABLES:
                continue
            zone = floor.tables[next(iter(tables))].zone
            for table in tables:
                if floor.tables[table].mobility != Mobility.MOVABLE:
                    continue
                for near in floor.neighbours[table]:
                    if (near in free and near not in tables and floor.tables[near].zone == zone
                            and floor.tables[near].mobility == Mobility.MOVABLE):
                        grown.append(tables | {near})
        frontier = grown
    for _, _, _, plan in sorted(found):
        if validate_plan(snapshot, request, plan, config, allow_overage_override=True,
                         allow_zone_override=True, allow_adjacency_override=True) is None:
            return plan
    return None


def _floorplan_path(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    for base in (project_root(), Path(__file__).resolve().parents[3]):
        if (base / SAMPLE_FLOORPLAN).exists():
            return base / SAMPLE_FLOORPLAN
    raise DemoError(f"sample floor plan {SAMPLE_FLOORPLAN} not found; pass --floorplan FILE")


def _demo_worker_env() -> dict[str, str]:
    """V3 is the path the demo shows, unless the user chose the flag themselves."""
    flags = load_flags(_env_file=project_root() / ".env")
    return {} if "v3" in flags.model_fields_set else {V3_FLAG: "true"}


def run_demo(bookings: int = 120, *, floorplan: Path | None = None, seed: int | None = None,
             workers: int | None = None, timeout: float = 300.0, console: Console | None = None,
             concurrency: int = 8, rate: float = 8.0, overbook: bool = False,
             tolerance_minutes: int = TOLERANCE_MINUTES) -> DemoSummary:
    """Bring the stack up, import the sample restaurant, book an evening, summarise.

    `bookings` is the number of guests who ask for a table (with `overbook`,
    the number of bookings, every one accepted)."""
    console = console or Console()
    started = time.monotonic()
    path = _floorplan_path(floorplan)
    if not overbook and bookings < 3:
        raise DemoError(f"a well-run evening needs at least 3 guests, got {bookings}; "
                        "use --overbook for fewer")
    with console.status("starting the local stack (PostgreSQL, Temporal, worker)..."):
        stack = devstack.up(workers, worker_env=_demo_worker_env())
    broken = [w for w in stack.workers if w.state != "running"]
    if broken or not stack.running:
        detail = "; ".join(f"{w.name} {w.detail}" for w in broken) or "see `seatflow dev status`"
        raise DemoError(f"the stack is not fully up: {detail}")
    console.print(f"stack up in {time.monotonic() - started:.1f} s - "
                  f"Temporal UI {stack.ui_url or stack.temporal_address}")
    book = _book_overbooked if overbook else _book_well_run
    summary = asyncio.run(book(stack, path, bookings, seed, timeout, console, concurrency, rate,
                               timedelta(minutes=tolerance_minutes)))
    summary.seconds = time.monotonic() - started
    summary.tolerance_minutes = tolerance_minutes
    summary.ui_url = stack.ui_url
    summary.namespace = stack.namespace
    return summary


@dataclass
class _Evening:
    """What both kinds of evening share: the stack, the restaurant, the clients."""

    stack: devstack.StackStatus
    engine: AsyncEngine
    client: Any  # temporalio.client.Client
    restaurant_id: str
    restaurant_name: str
    tz: ZoneInfo
    evening: date
    rng: random.Random
    console: Console
    config: EngineConfig

    def new_booking(self, b: DemoBooking, start: datetime | None = None) -> Any:
        from seatflow.domain.intake import NewBooking

        return NewBooking(restaurant_id=self.restaurant_id, party_size=b.party_size,
                          start=start or b.start, zone_preference=b.zone,
                          guest_name=b.guest_name, guest_email=b.guest_email)

    def pipeline_name(self) -> str:
        flags = load_flags(_env_file=project_root() / ".env")
        pipeline = "the V3 pipeline" if flags.v3_enabled_for(self.restaurant_id) or \
            "v3" not in flags.model_fields_set else "the legacy planner"
        if flags.shadow and pipeline == "the legacy planner":
            pipeline += " with V3 in shadow mode"
        return pipeline


async def _open_evening(stack: devstack.StackStatus, path: Path, seed: int | None,
                        console: Console, concurrency: int) -> _Evening:
    from temporalio.client import Client

    from seatflow.config import settings
    from seatflow.floorplan import load_floorplan
    from seatflow.storage.db import make_engine
    from seatflow.storage.floorplans import import_floorplan

    assert stack.database_url and stack.temporal_address
    plan = load_floorplan(path)
    tz = ZoneInfo(plan.restaurant.timezone)
    engine = make_engine(stack.database_url, pool_size=concurrency + 2, max_overflow=2)
    try:
        imported = await import_floorplan(engine, plan)
        console.print(f"imported {plan.restaurant.name}: {len(plan.tables)} tables, "
                      f"{imported.total_capacity} seats")
        evening = await _free_evening(engine, plan.restaurant.id, tz)
        client = await Client.connect(stack.temporal_address, namespace=stack.namespace)
    except BaseException:
        await engine.dispose()
        raise
    rng = random.Random(seed if seed is not None else evening.toordinal())
    return _Evening(stack, engine, client, plan.restaurant.id, plan.restaurant.name, tz,
                    evening, rng, console, settings().engine_config())


async def _book_overbooked(stack: devstack.StackStatus, path: Path, count: int,
                           seed: int | None, timeout: float, console: Console, concurrency: int,
                           rate: float, _tolerance: timedelta) -> DemoSummary:
    """Every booking accepted without asking: re-packing and manual review under pressure."""
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.intake.service import create_booking
    from seatflow.ops.loadtest import wait_until_settled

    ev = await _open_evening(stack, path, seed, console, concurrency)
    try:
        wanted = plan_evening(ev.evening, ev.tz, count, ev.rng)
        summary = DemoSummary(ev.restaurant_id, ev.evening, count, mode="overbook",
                              requested=count)
        ids: list[str] = []
        gate = asyncio.Semaphore(concurrency)

        async def book(index: int, b: DemoBooking) -> None:
            # Guests book one after another, not all in the same instant: `rate`
            # bookings per second (0: one burst, to see the queueing).
            if rate > 0:
                await asyncio.sleep(max(0.0, first_at + index / rate - time.monotonic()))
            async with gate:
                try:
                    created = await create_booking(ev.engine, ev.client, ev.new_booking(b),
                                                   task_queue=stack.task_queue)
                except InvalidBooking:
                    summary.rejected += 1
                else:
                    ids.append(created.booking_id)
                progress.advance(created_task)

        console.print(f"booking {count} dinners for {ev.evening:%A %d %B} "
                      f"({ev.tz.key}) through {ev.pipeline_name()}, every one accepted "
                      "without asking availability (--overbook)")
        with _progress(console) as progress:
            created_task = progress.add_task("created", total=count, states="")
            settled_task = progress.add_task("settled", total=count, states="")
            first_at = time.monotonic()
            creating = asyncio.gather(*(book(i, b) for i, b in enumerate(wanted)))
            await wait_until_settled(
                ev.engine, ids, total=count, rejected=lambda: summary.rejected,
                creating=creating, progress=progress, task=settled_task,
                deadline=time.monotonic() + timeout, console=console, poll=0.4)
        summary.bookings = len(ids)
        await _measure(ev.engine, summary, ids, pipeline_ids=ids)
        return summary
    finally:
        await ev.engine.dispose()


async def _book_well_run(stack: devstack.StackStatus, path: Path, count: int, seed: int | None,
                         timeout: float, console: Console, concurrency: int, rate: float,
                         tolerance: timedelta) -> DemoSummary:
    """The phone book and its operator, the evening's guests, one cancellation."""
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.intake.service import create_booking
    from seatflow.ops.loadtest import wait_until_settled

    ev = await _open_evening(stack, path, seed, console, concurrency)
    try:
        guests = plan_guests(ev.evening, ev.tz, count, ev.rng)
        phone = [g for g in guests if g.channel == PHONE]
        online = [g for g in guests if g.channel == ONLINE]
        summary = DemoSummary(ev.restaurant_id, ev.evening, 0, requested=len(guests))
        deadline = time.monotonic() + timeout
        console.print(f"{ev.restaurant_name}, {ev.evening:%A %d %B} ({ev.tz.key}), "
                      f"through {ev.pipeline_name()}: {len(phone)} phone bookings, then "
                      f"{len(online)} guests online")

        # 1. The phone book: accepted without the check, as the origin system did.
        big = phone[0]
        big_id: str | None = None
        try:
            shown = await _ask(ev, big, timedelta(hours=12))
            times = ", ".join(f"{t:%H:%M}" for t in shown) or "no time that day"
        except InvalidBooking as exc:  # a floor plan too small for the party at all
            times = f"nothing ({exc.message})"
        console.print(f"[bold]phone[/]    a party of {big.party_size} asks for "
                      f"{big.start:%H:%M}: availability shows {times}; the host takes the "
                      "booking anyway")
        ids: list[str] = []
        for b in phone:
            try:
                created = await create_booking(ev.engine, ev.client, ev.new_booking(b),
                                               task_queue=stack.task_queue)
            except InvalidBooking as exc:
                summary.rejected += 1
                summary.notes.append(f"phone booking refused at intake: {exc}")
                continue
            ids.append(created.booking_id)
            if b is big:
                big_id = created.booking_id
        summary.bookings = summary.phone = len(ids)  # the refused are counted apart
        if big_id is not None:
            summary.operator = await _operator_seats(ev, big_id, big.party_size, deadline)

        # 2. The evening's guests ask availability first.
        online_ids: list[str] = []
        gate = asyncio.Semaphore(concurrency)
        outcomes: Counter[str] = Counter()

        async def guest(index: int, b: DemoBooking) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, first_at + index / rate - time.monotonic()))
            async with gate:
                try:
                    outcome, booking_id = await _guest_books(ev, b, tolerance,
                                                             stack.task_queue, create_booking)
                except InvalidBooking as exc:
                    outcome, booking_id = "rejected", None
                    summary.notes.append(f"guest refused at intake: {exc}")
                outcomes.update(outcome.split("+"))
                if booking_id:
                    online_ids.append(booking_id)
                progress.advance(asked_task)

        with _progress(console) as progress:
            asked_task = progress.add_task("asked", total=len(online), states="")
            settled_task = progress.add_task("settled", total=len(online), states="")
            first_at = time.monotonic()
            asking = asyncio.gather(*(guest(i, b) for i, b in enumerate(online)))
            await wait_until_settled(
                ev.engine, online_ids, total=len(online),
                rejected=lambda: outcomes["went_away"] + outcomes["rejected"],
                creating=asking, progress=progress, task=settled_task,
                deadline=deadline, console=console, poll=0.4)
        summary.at_time_asked = outcomes["at_time_asked"]
        summary.offered = outcomes["offered"]
        summary.took_offer = outcomes["took_offer"]
        summary.went_away = outcomes["went_away"]
        summary.rejected += outcomes["rejected"]
        ids += online_ids
        summary.bookings = len(ids)

        # What the pipeline could not seat after all goes to the operator.
        summary.operator_queue = await _operator_clears_queue(ev, online_ids)

        # 3. One guest cancels.
        summary.cancellation = await _guest_cancels(ev, online_ids)
        by_operator = {s.booking_id for s in [summary.operator, *summary.operator_queue]
                       if s is not None and s.command}
        await _measure(ev.engine, summary, ids,
                       pipeline_ids=[i for i in ids if i not in by_operator])
        return summary
    finally:
        await ev.engine.dispose()


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=console)


async def _ask(ev: _Evening, b: DemoBooking, around: timedelta) -> list[datetime]:
    """A guest asks availability the way a booking page shows it: the start
    times within `around` of the time they want that have a table now."""
    from seatflow.availability import check_availability

    found = await check_availability(
        ev.engine, ev.restaurant_id, b.party_size,
        window=(b.start - around, b.start + around + timedelta(seconds=1)),
        config=ev.config, also=b.start)
    return found.available_starts


def _closest(times: Sequence[datetime], wanted: datetime, tolerance: timedelta) -> datetime | None:
    near = [t for t in times if abs(t - wanted) <= tolerance]
    return min(near, key=lambda t: (abs(t - wanted), t)) if near else None


async def _guest_books(ev: _Evening, b: DemoBooking, tolerance: timedelta, task_queue: str,
                       create_booking: Any) -> tuple[str, str | None]:
    """One online guest: ask, then book the time asked or the closest time
    shown within `tolerance`, or go away. The booking itself requires
    availability (as the HTTP API does), so a time taken between asking and
    booking is refused with the nearest times, and the guest takes the
    closest of them within `tolerance` once more. Returns what happened
    ("at_time_asked", "offered+took_offer", "offered+went_away", "went_away")
    and the booking id."""
    from seatflow.intake.service import NotAvailable

    shown = await _ask(ev, b, tolerance)
    start = _closest(shown, b.start, tolerance)
    was_offered = start is not None and start != b.start
    for _ in range(2):
        if start is None:
            break
        try:
            created = await create_booking(ev.engine, ev.client, ev.new_booking(b, start),
                                           task_queue=task_queue, require_availability=True,
                                           engine_config=ev.config)
        except NotAvailable as exc:  # taken meanwhile: the nearest times again
            was_offered = was_offered or bool(exc.nearest)
            start = _closest(exc.nearest, b.start, tolerance)
            continue
        if start == b.start:
            return "at_time_asked", created.booking_id
        return "offered+took_offer", created.booking_id
    return ("offered+went_away" if was_offered else "went_away"), None


async def _operator_seats(ev: _Evening, booking_id: str, party: int,
                          deadline: float) -> CliStep:
    """Wait until the party is in manual review (each failed attempt shown),
    then an operator decides (`_operator_decides`)."""
    from seatflow.intake.service import booking_view

    console = ev.console
    shown = 0
    view = await booking_view(ev.engine, booking_id)
    with console.status(f"the party of {party} uses its automatic attempts..."):
        while view["assignment_state"] not in SETTLED and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            view = await booking_view(ev.engine, booking_id)
            for attempt in view["attempts"][shown:]:
                console.print(f"          attempt {attempt['attempt_no']}: {attempt['result']}"
                              f" - {attempt['reason'] or ''}")
            shown = len(view["attempts"])
    if view["assignment_state"] != "manual_review":
        console.print(f"          the party of {party} is {view['assignment_state']}; "
                      "no operator needed")
        return CliStep("", 0, "", booking_id, party, list(view["tables"]),
                       view["assignment_state"])
    console.print(f"          the party of {party} waits in manual review "
                  f"({view['last_reason'] or 'no plan'})")
    return await _operator_decides(ev, view, note=f"party of {party}: tables pushed together")


async def _operator_decides(ev: _Evening, view: dict[str, Any], *, note: str) -> CliStep:
    """An operator looks at the floor for a booking in manual review: free
    tables (`operator_tables`) are assigned with `seatflow review assign --force`;
    when there are none, the booking is rejected with `seatflow review reject`
    (and the guest called), so no one is left waiting."""
    from seatflow.intake.service import booking_view
    from seatflow.storage.restaurants import load_snapshot

    booking_id, party = view["booking_id"], int(view["party_size"])
    request = BookingRequest(
        booking_id=booking_id, party_size=party,
        start=datetime.fromisoformat(view["start"]),
        end=datetime.fromisoformat(view["occupied_until"]),
        zone_preference=view["zone_preference"])
    async with ev.engine.connect() as conn:
        snapshot = await load_snapshot(conn, ev.restaurant_id, request.start, request.end,
                                       exclude_booking=booking_id)
    tables = operator_tables(snapshot, request, ev.config)
    if tables is not None:
        args = ["review", "assign", booking_id, "--tables", ",".join(tables),
                "--actor", OPERATOR_ACTOR, "--force", "--note", note]
    else:
        local = request.start.astimezone(ev.tz)
        args = ["review", "reject", booking_id, "--actor", OPERATOR_ACTOR, "--reason",
                f"no free tables for a party of {party} at {local:%H:%M}; guest called"]
    command, code, output, crashed = await run_cli(ev, args, who="operator")
    after = await booking_view(ev.engine, booking_id)
    return CliStep(command, code, output, booking_id, party, list(after["tables"]),
                   after["assignment_state"], crashed)


async def _operator_clears_queue(ev: _Evening, booking_ids: list[str]) -> list[CliStep]:
    """Bookings the pipeline could not seat after all (a guest who booked a
    time another took in the same instant): the operator decides each."""
    from seatflow.intake.service import booking_view

    steps = []
    for booking_id in booking_ids:
        view = await booking_view(ev.engine, booking_id)
        if view["assignment_state"] == "manual_review":
            steps.append(await _operator_decides(
                ev, view, note="booked in the same instant as another guest"))
    return steps


async def _guest_cancels(ev: _Evening, booking_ids: list[str]) -> CliStep | None:
    """One guest with a confirmed table cancels through `seatflow bookings cancel`."""
    from seatflow.intake.service import booking_view

    candidates = sorted(booking_ids)
    ev.rng.shuffle(candidates)
    for booking_id in candidates:
        view = await booking_view(ev.engine, booking_id)
        if view["assignment_state"] == "confirmed":
            break
    else:
        ev.console.print("[yellow]no confirmed online booking to cancel[/]")
        return None
    command, code, output, crashed = await run_cli(
        ev, ["bookings", "cancel", booking_id, "--actor", "guest",
             "--reason", "plans changed"], who="guest")
    after = await booking_view(ev.engine, booking_id)
    return CliStep(command, code, output, booking_id, int(after["party_size"]),
                   list(after["tables"]), after["assignment_state"], crashed)


def _cli_argv() -> list[str]:
    """The `seatflow` command of this installation (its console script, or the
    same entry point through this interpreter)."""
    script = Path(sys.executable).with_name("seatflow")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c",
            "import sys; from seatflow.cli import main; sys.argv[0] = 'seatflow'; main()"]


async def run_cli(ev: _Evening, args: list[str], *, who: str) -> tuple[str, int, str, bool]:
    """Run `seatflow ARGS` against the demo's stack, printing the command as a
    person would type it and what it answered: (command, exit code, output,
    whether the process crashed at interpreter exit after the command)."""
    command = shlex.join(["seatflow", *args])
    ev.console.print(f"[bold]{who:<9}[/] $ {command}")
    env = dict(os.environ)
    assert ev.stack.database_url and ev.stack.temporal_address
    env.update(DATABASE_URL=ev.stack.database_url, TEMPORAL_ADDRESS=ev.stack.temporal_address,
               TEMPORAL_NAMESPACE=ev.stack.namespace, SEATFLOW_LOG_FORMAT="console")
    process = await asyncio.create_subprocess_exec(
        *_cli_argv(), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    output = out.decode(errors="replace").strip()
    code = process.returncode if process.returncode is not None else -1
    crashed = code < 0 and EXIT_CRASH_MARK in output
    if crashed:  # keep what the command said; the crash dump is noise to a person
        output = output[: output.index("Fatal Python error")].strip()
    for line in output.splitlines() or [""]:
        ev.console.print(Text(f"          {line}", style="" if code == 0 or crashed else "red"))
    if crashed:
        ev.console.print(f"[yellow]          (exit {code}: the Temporal SDK's rare crash at "
                         "interpreter exit, after the command finished)[/]")
    elif code != 0:
        ev.console.print(f"[red]          (exit {code})[/]")
    return command, code, output, crashed


async def _measure(engine: AsyncEngine, summary: DemoSummary, ids: list[str], *,
                   pipeline_ids: list[str]) -> None:
    """Final states of every booking; latency of those the pipeline seated
    (an operator's assignment measures a person, not the pipeline)."""
    from seatflow.ops.loadtest import permit_wait_p95_ms, states_of
    from seatflow.storage.stats import confirm_latencies

    summary.states = await states_of(engine, ids)
    summary.latencies = await confirm_latencies(engine, pipeline_ids)
    summary.slot_wait_p95_ms = await permit_wait_p95_ms(engine, ids)


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
    title = f"{summary.restaurant_id}, evening of {summary.evening:%a %d %b %Y}"
    if summary.mode == "overbook":
        title += " (overbooked: everyone accepted)"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    if summary.mode == "evening":
        table.add_row("requested (guests asking)", str(summary.requested))
        table.add_row("  booked at the time asked", str(summary.at_time_asked))
        table.add_row(f"  offered another time (within {summary.tolerance_minutes} min)",
                      str(summary.offered))
        table.add_row("    took it", str(summary.took_offer))
        table.add_row("  went away (nothing near their time)", str(summary.went_away))
        table.add_row("  phone / walk-in (no check)", str(summary.phone))
    table.add_row("booked", str(summary.bookings))
    table.add_row("confirmed", f"{summary.states['confirmed']} "
                               f"({summary.states['confirmed'] / n:.0%})")
    table.add_row("manual review", str(summary.states["manual_review"]))
    table.add_row("cancelled", str(summary.states["cancelled"]))
    table.add_row("failed", str(summary.states["failed"]))
    if summary.unsettled:
        table.add_row("still in flight", str(summary.unsettled))
    if summary.rejected:
        table.add_row("refused at intake", str(summary.rejected))
    if summary.operator and summary.operator.command:
        op = summary.operator
        table.add_row(f"operator seated the party of {op.party_size}",
                      f"{op.state} at {','.join(op.tables) or '-'}")
    for step in summary.operator_queue:
        table.add_row(f"operator decided a party of {step.party_size}",
                      f"{step.state} at {','.join(step.tables)}" if step.tables
                      else str(step.state))
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
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print()
    if summary.ui_url:
        console.print(f"Temporal UI:   {summary.ui_url}")
        console.print(f"manual review: filter with  {MANUAL_REVIEW_QUERY}  or open")
        console.print(f"               {summary.manual_review_url}")
    console.print("inspect:       seatflow bookings show ID   |   seatflow review list")
    console.print("the targets:   seatflow report   (confirmation, manual review, latency, "
                  "permit wait)")
    console.print("the stack keeps running; stop it with:  seatflow dev down")


def demo_command(
    bookings: Annotated[int, typer.Option(
        min=1, help="How many guests ask for a table (with --overbook: bookings made).")] = 120,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the date).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Worker processes to run (default: one per core).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for bookings to settle.")]
    = 300.0,
    floorplan: Annotated[Path | None, typer.Option(help="Floor plan to import instead of "
                                                        "the sample restaurant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    rate: Annotated[float, typer.Option(
        min=0, help="Guests (or bookings) per second (0: all at once).")] = 8.0,
    overbook: Annotated[bool, typer.Option(
        "--overbook", help="Accept every booking without asking availability: re-packing "
                           "and the manual-review queue under pressure.")] = False,
) -> None:
    """Bring the local stack up and book an evening the way guests book: each asks
    availability, takes the time or the nearest offered one, or goes away; a
    party of 20 is seated by an operator; one guest cancels."""
    console = Console(stderr=as_json)
    try:
        summary = run_demo(bookings, floorplan=floorplan, seed=seed, workers=workers,
                           timeout=timeout, console=console, rate=rate, overbook=overbook)
    except (DemoError, devstack.DevStackError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, console)
    if summary.unsettled:
        raise typer.Exit(3)


__all__ = ["CliStep", "DemoBooking", "DemoError", "DemoSummary", "demo_command",
           "operator_tables", "plan_evening", "plan_guests", "print_summary", "run_demo"]
