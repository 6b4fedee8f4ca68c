"""The seatflow worker process: registers workflows and activities.

Run it with `python -m worker` (the dev stack does). It reads its
configuration from the environment; invalid flags stop it at start with a
message naming the variable.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.booking import BookingActivities
from activities.flags import FlagActivities
from seatflow.config import ConfigError, Settings, load_flags, load_settings
from seatflow.mail import FileMailbox, MailTransport, SmtpTransport, is_local
from shadow_worker import build_shadow_worker
from workflows.booking import BookingAssignmentWorkflow, GuestEmailWorkflow
from workflows.converter import DATA_CONVERTER
from workflows.runner import worker_options

WORKFLOWS = [BookingAssignmentWorkflow, GuestEmailWorkflow]
MAX_CONCURRENT_ACTIVITIES = 100
# Bounded on purpose: with 1000 slots a burst of 500 bookings let every
# workflow task start at once on one saturated core, tasks outlived their
# 10 s timeout, were retried with their local activities, and throughput
# fell from 7.9 to 0.85 bookings/s (bench/pipeline.py).
MAX_CONCURRENT_WORKFLOW_TASKS = 100
# On SIGTERM the worker stops polling and gives running activities this long
# to finish before cancelling them; under the container's 30 s stop grace
# period (docker-compose.temporal.yml), so the process still exits cleanly.
GRACEFUL_SHUTDOWN = timedelta(seconds=25)


def mail_transport(settings: Settings) -> MailTransport:
    if settings.mail_transport == "smtp":
        return SmtpTransport(settings.smtp_host, settings.smtp_port)
    return FileMailbox(settings.mailbox_path())


def build_worker(
    client: Client,
    engine: AsyncEngine,
    settings: Settings,
    *,
    task_queue: str | None = None,
    transport: MailTransport | None = None,
) -> Worker:
    """The production worker, also used by the tests with their own queue."""
    transport = transport or mail_transport(settings)
    booking = BookingActivities(engine, transport, settings)
    flags = FlagActivities(settings, email_local=is_local(transport))
    # The same connection, decoding with the worker's converter (the same JSON
    # as the default's; type hints resolved once per message class).
    config = client.config()
    config["data_converter"] = DATA_CONVERTER
    return Worker(
        Client(**config),
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        **worker_options(),
        activities=[*booking.all(), flags.decide_pipeline],
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def serve(settings: Settings) -> None:
    from seatflow.ops.telemetry import BookingStateSampler, make_runtime
    from seatflow.storage.db import make_engine
    from seatflow.storage.embedded import resolve_database_url

    runtime = make_runtime(settings)  # Prometheus on SEATFLOW_METRICS_ADDRESS
    engine = make_engine(resolve_database_url(settings.database_url))
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime
    )
    worker = build_worker(client, engine, settings)
    # The shadow worker always runs, so turning shadow mode on needs no restart;
    # it registers read-only activities only.
    shadow = build_shadow_worker(client, engine, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"seatflow worker: task queue {settings.task_queue} on {settings.temporal_address}, "
        f"metrics on {settings.metrics_address or 'off'}",
        flush=True,
    )
    async with BookingStateSampler(engine), worker, shadow:
        await stop.wait()
    await engine.dispose()


def main() -> None:
    try:
        settings = load_settings()
        load_flags()  # fail fast on a bad flag, naming the variable
    except ConfigError as exc:
        print(f"seatflow worker: {exc}", file=sys.stderr)
        sys.exit(2)
    from seatflow.logging import configure_logging

    configure_logging(settings.log_format)
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:  # e.g. the metrics port is taken
        print(f"seatflow worker: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
