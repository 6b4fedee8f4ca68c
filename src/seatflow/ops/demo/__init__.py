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
   time they want (`seatflow.service.availability.check_start`), takes it or the
   nearest offered time within `tolerance`, or goes away. Like a booking
   site, it holds the time first (`seatflow.service.holds`), then books on
   the hold, so a time taken meanwhile is refused at the hold with the
   nearest times, and a booking made is never refused after all.
3. One guest cancels (`seatflow bookings cancel`, printed as it runs).

The summary counts every guest (requested = booked + went away), the states
of every booking, and the latency created -> confirmed of the bookings the
pipeline seated; `seatflow report` afterwards shows the service's targets.
`overbook=True` keeps the older evening: everyone is accepted without asking,
which shows re-packing and the manual-review queue under pressure.

The parts: `scenario` (the restaurant, the evening, the guests), `evening`
(running it on the stack), `operator` (the operator's decisions through the
CLI) and `render` (the summary and progress bars).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from seatflow.config import load_flags, project_root
from seatflow.ops import devstack
from seatflow.ops.demo.evening import book_overbooked, book_well_run
from seatflow.ops.demo.render import DemoSummary, print_summary
from seatflow.ops.demo.scenario import TOLERANCE_MINUTES, DemoError, floorplan_path

V3_FLAG = "FEATURE_ASSIGNMENT_PIPELINE_V3"


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
    path = floorplan_path(floorplan)
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
    book = book_overbooked if overbook else book_well_run
    summary = asyncio.run(book(stack, path, bookings, seed, timeout, console, concurrency, rate,
                               timedelta(minutes=tolerance_minutes)))
    summary.seconds = time.monotonic() - started
    summary.tolerance_minutes = tolerance_minutes
    summary.ui_url = stack.ui_url
    summary.namespace = stack.namespace
    if stack.host_url:
        summary.host_url = f"{stack.host_url}{summary.restaurant_id}?date={summary.evening}"
    return summary


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
