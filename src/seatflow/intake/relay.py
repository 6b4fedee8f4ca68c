"""The intake relay: starts the workflows of bookings accepted while Temporal
was unreachable.

`create_booking` writes a booking and its `intake_outbox` row in one
transaction, then starts the workflow. When that start fails (Temporal down,
a crash between commit and start), the row stays with `started_at IS NULL`.
The relay finds such rows, starts their workflows and marks them started.
Starting is idempotent (the workflow id is the booking's, a second start joins
the first), so a relay racing `create_booking`, a second relay, or a crash
between start and mark never starts a booking twice.

    python -m seatflow.intake.relay      # what `seatflow dev up` and compose run
    seatflow intake [--once]             # the same loop from the CLI

While Temporal or PostgreSQL is unreachable the loop backs off (1 s doubling
to 30 s) and says why on each failed pass.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Collection
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.config import ConfigError, Settings, load_settings
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.logging import configure_logging, get_logger
from seatflow.service.bookings import start_booking_workflow
from seatflow.storage.intake import mark_intake_started, pending_intake

BATCH_SIZE = 100  # rows per pass
POLL_SECONDS = 1.0
# Rows younger than this are left to `create_booking`, which is about to start them.
SETTLE_SECONDS = 1.0
BACKOFF_START_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0

log = get_logger("seatflow.intake.relay")


class IntakeStartFailed(RuntimeError):
    """A workflow could not be started; rows after it wait for the next pass."""

    def __init__(self, booking_id: str, started: int, cause: BaseException) -> None:
        self.booking_id = booking_id
        self.started = started
        self.cause = cause
        super().__init__(
            f"could not start the workflow of booking {booking_id} "
            f"({type(cause).__name__}: {cause}); {started} started before it"
        )


async def relay_once(
    engine: AsyncEngine,
    client: Client,
    task_queue: str,
    *,
    limit: int = BATCH_SIZE,
    min_age_seconds: float = 0.0,
    restaurant_ids: Collection[str] | None = None,
) -> int:
    """Start the workflows of up to `limit` pending bookings; return how many.

    Stops at the first start that fails, records the error on that row
    (`intake_outbox.last_error`) and raises IntakeStartFailed: when Temporal is
    down every other start would fail the same way.
    """
    started = 0
    pending = await pending_intake(engine, limit=limit, min_age_seconds=min_age_seconds,
                                   restaurant_ids=restaurant_ids)
    for item in pending:
        try:
            await start_booking_workflow(
                client, booking_id=item.booking_id, restaurant_id=item.restaurant_id,
                party_size=item.party_size, start=item.start, task_queue=task_queue,
            )
        except Exception as exc:  # recorded on the row, then raised
            await mark_intake_started(
                engine, item.booking_id, error=f"{type(exc).__name__}: {exc}"
            )
            raise IntakeStartFailed(item.booking_id, started, exc) from exc
        await mark_intake_started(engine, item.booking_id)
        started += 1
        log.info("intake.workflow_started", booking_id=item.booking_id,
                 workflow_id=booking_workflow_id(item.booking_id),
                 restaurant_id=item.restaurant_id)
    return started


def next_backoff(current: float | None) -> float:
    """1 s, 2 s, 4 s ... capped at 30 s."""
    if current is None:
        return BACKOFF_START_SECONDS
    return min(current * 2, BACKOFF_CAP_SECONDS)


async def run_relay(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    once: bool = False,
    poll_seconds: float = POLL_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
    restaurant_ids: Collection[str] | None = None,
) -> int:
    """The relay loop; returns the number of workflows started.

    With `once`, drains the backlog and returns (raising when a pass fails).
    """
    from seatflow.storage.db import make_engine
    from seatflow.storage.embedded import resolve_database_url

    stop = stop or asyncio.Event()
    engine = make_engine(resolve_database_url(settings.database_url), pool_size=2,
                         max_overflow=2)
    client: Client | None = None
    total = 0
    backoff: float | None = None
    try:
        while not stop.is_set():
            try:
                if client is None:
                    client = await Client.connect(
                        settings.temporal_address, namespace=settings.temporal_namespace
                    )
                started = await relay_once(
                    engine, client, settings.task_queue,
                    min_age_seconds=0.0 if once else settle_seconds,
                    restaurant_ids=restaurant_ids,
                )
            except Exception as exc:  # the loop outlives outages
                if once:
                    raise
                if isinstance(exc, IntakeStartFailed):
                    total += exc.started
                backoff = next_backoff(backoff)
                log.warning("intake.relay_unavailable", error=str(exc), retry_in_s=backoff)
                await _sleep(stop, backoff)
                continue
            if backoff is not None:
                log.info("intake.relay_recovered")
                backoff = None
            total += started
            if started >= BATCH_SIZE:
                continue  # more may be waiting
            if once:
                break
            await _sleep(stop, poll_seconds)
    finally:
        await engine.dispose()
    return total


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def _serve(
    settings: Settings, *, once: bool, poll_seconds: float,
    restaurant_ids: Collection[str] | None = None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("intake.relay_started", temporal_address=settings.temporal_address,
             task_queue=settings.task_queue)
    return await run_relay(settings, stop=stop, once=once, poll_seconds=poll_seconds,
                           restaurant_ids=restaurant_ids)


def intake_command(
    once: Annotated[
        bool, typer.Option("--once", help="Start what is pending, then exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between scans of intake_outbox.")
    ] = POLL_SECONDS,
    restaurant: Annotated[
        list[str] | None,
        typer.Option("--restaurant", help="Only this restaurant's bookings (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Start the workflows of bookings accepted while Temporal was unreachable.

    Runs until stopped (SIGTERM / Ctrl-C); with --once, exits after one pass
    (1 when a workflow could not be started).
    """
    if interval <= 0:
        typer.echo("usage error: --interval must be > 0", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"usage error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format)
    began = time.monotonic()
    try:
        started = asyncio.run(
            _serve(settings, once=once, poll_seconds=interval, restaurant_ids=restaurant or None)
        )
    except Exception as exc:  # noqa: BLE001 - reported to the person, exit 1
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"started": started, "seconds": round(time.monotonic() - began, 3)}))
    else:
        typer.echo(f"intake relay: {started} workflow(s) started")


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"seatflow intake relay: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_format)
    asyncio.run(_serve(settings, once=False, poll_seconds=POLL_SECONDS))


if __name__ == "__main__":
    main()
