"""Running the demo evening on the local stack: the restaurant imported, the
phone book and its operator, the guests asking availability and booking, one
cancellation, and what was measured."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.console import Console

from seatflow.config import load_flags, project_root
from seatflow.domain.planning import EngineConfig
from seatflow.ops import devstack
from seatflow.ops.demo.operator import (
    CliStep,
    operator_clears_queue,
    operator_seats,
    run_cli,
)
from seatflow.ops.demo.render import DemoSummary, progress_bars
from seatflow.ops.demo.scenario import (
    ONLINE,
    PHONE,
    DemoBooking,
    free_evening,
    plan_evening,
    plan_guests,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class Evening:
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


async def open_evening(stack: devstack.StackStatus, path: Path, seed: int | None,
                        console: Console, concurrency: int) -> Evening:
    from temporalio.client import Client

    from seatflow.config import settings
    from seatflow.floorplan_file import load_floorplan
    from seatflow.service.restaurants import import_restaurant
    from seatflow.storage.db import make_engine

    assert stack.database_url and stack.temporal_address
    plan = load_floorplan(path)
    tz = ZoneInfo(plan.restaurant.timezone)
    engine = make_engine(stack.database_url, pool_size=concurrency + 2, max_overflow=2)
    try:
        imported = await import_restaurant(engine, plan)
        console.print(f"imported {plan.restaurant.name}: {len(plan.tables)} tables, "
                      f"{imported.total_capacity} seats")
        evening = await free_evening(engine, plan.restaurant.id, tz)
        client = await Client.connect(stack.temporal_address, namespace=stack.namespace)
    except BaseException:
        await engine.dispose()
        raise
    rng = random.Random(seed if seed is not None else evening.toordinal())
    return Evening(stack, engine, client, plan.restaurant.id, plan.restaurant.name, tz,
                    evening, rng, console, settings().engine_config())


async def book_overbooked(stack: devstack.StackStatus, path: Path, count: int,
                           seed: int | None, timeout: float, console: Console, concurrency: int,
                           rate: float, _tolerance: timedelta) -> DemoSummary:
    """Every booking accepted without asking: re-packing and manual review under pressure."""
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.ops.loadtest import wait_until_settled
    from seatflow.service.bookings import create_booking

    ev = await open_evening(stack, path, seed, console, concurrency)
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
        with progress_bars(console) as progress:
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


async def book_well_run(stack: devstack.StackStatus, path: Path, count: int, seed: int | None,
                         timeout: float, console: Console, concurrency: int, rate: float,
                         tolerance: timedelta) -> DemoSummary:
    """The phone book and its operator, the evening's guests, one cancellation."""
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.ops.loadtest import wait_until_settled
    from seatflow.service.bookings import create_booking

    ev = await open_evening(stack, path, seed, console, concurrency)
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
            summary.operator = await operator_seats(ev, big_id, big.party_size, deadline)

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

        with progress_bars(console) as progress:
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
        summary.operator_queue = await operator_clears_queue(ev, online_ids)

        # 3. One guest cancels.
        summary.cancellation = await guest_cancels(ev, online_ids)
        by_operator = {s.booking_id for s in [summary.operator, *summary.operator_queue]
                       if s is not None and s.command}
        await _measure(ev.engine, summary, ids,
                       pipeline_ids=[i for i in ids if i not in by_operator])
        return summary
    finally:
        await ev.engine.dispose()


async def _ask(ev: Evening, b: DemoBooking, around: timedelta) -> list[datetime]:
    """A guest asks availability the way a booking page shows it: the start
    times within `around` of the time they want that have a table now."""
    from seatflow.service.availability import check_availability

    found = await check_availability(
        ev.engine, ev.restaurant_id, b.party_size,
        window=(b.start - around, b.start + around + timedelta(seconds=1)),
        config=ev.config, also=b.start)
    return found.available_starts


def _closest(times: Sequence[datetime], wanted: datetime, tolerance: timedelta) -> datetime | None:
    near = [t for t in times if abs(t - wanted) <= tolerance]
    return min(near, key=lambda t: (abs(t - wanted), t)) if near else None


async def _guest_books(ev: Evening, b: DemoBooking, tolerance: timedelta, task_queue: str,
                       create_booking: Any) -> tuple[str, str | None]:
    """One online guest, as a booking site serves them: ask, then hold the
    time asked or the closest time shown within `tolerance` (the tables are
    the guest's while they fill in the form), then book on the hold, which
    confirms on the held tables; or go away. A time taken between asking and
    holding is refused with the nearest times, and the guest takes the
    closest of them within `tolerance` once more. Returns what happened
    ("at_time_asked", "offered+took_offer", "offered+went_away", "went_away")
    and the booking id."""
    from dataclasses import replace

    from seatflow.service.bookings import NotAvailable
    from seatflow.service.holds import request_hold

    shown = await _ask(ev, b, tolerance)
    start = _closest(shown, b.start, tolerance)
    was_offered = start is not None and start != b.start
    for _ in range(2):
        if start is None:
            break
        holder = f"demo-guest-{b.guest_name}-{b.start:%H%M}"
        try:
            hold = await request_hold(ev.engine, ev.restaurant_id, holder,
                                      party_size=b.party_size, start=start.isoformat(),
                                      config=ev.config)
            created = await create_booking(
                ev.engine, ev.client,
                replace(ev.new_booking(b, start), hold_id=hold.hold_id, holder=holder),
                task_queue=task_queue, require_availability=True, engine_config=ev.config)
        except NotAvailable as exc:  # taken meanwhile: the nearest times again
            was_offered = was_offered or bool(exc.nearest)
            start = _closest(exc.nearest, b.start, tolerance)
            continue
        if start == b.start:
            return "at_time_asked", created.booking_id
        return "offered+took_offer", created.booking_id
    return ("offered+went_away" if was_offered else "went_away"), None


async def guest_cancels(ev: Evening, booking_ids: list[str]) -> CliStep | None:
    """One guest with a confirmed table cancels through `seatflow bookings cancel`."""
    from seatflow.service.bookings import booking_view

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


async def _measure(engine: AsyncEngine, summary: DemoSummary, ids: list[str], *,
                   pipeline_ids: list[str]) -> None:
    """Final states of every booking; latency of those the pipeline seated
    (an operator's assignment measures a person, not the pipeline)."""
    from seatflow.ops.loadtest import states_of
    from seatflow.storage.stats import confirm_latencies, slot_figures

    summary.states = await states_of(engine, ids)
    summary.latencies = await confirm_latencies(engine, pipeline_ids)
    summary.slot_wait_p95_ms = (await slot_figures(engine, ids))["wait_ms"]["p95"]
