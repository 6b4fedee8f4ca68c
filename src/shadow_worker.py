"""The shadow worker: `ShadowAssignmentWorkflow` and its read-only activities.

It serves its own task queue (`SEATFLOW_SHADOW_TASK_QUEUE`, default
`seatflow-shadow`) and registers no activity that can allocate a table, change
a booking's state or send an email, so a shadow cannot have side effects by
construction (docs/architecture.md, guarantees).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.shadow import ShadowActivities
from seatflow.config import Settings
from workflows.runner import worker_options
from workflows.shadow import ShadowAssignmentWorkflow


def build_shadow_worker(
    client: Client,
    engine: AsyncEngine,
    settings: Settings,
    *,
    task_queue: str | None = None,
) -> Worker:
    """The shadow worker, also used by the tests with their own queue."""
    activities = ShadowActivities(engine, settings)
    return Worker(
        client,
        task_queue=task_queue or settings.shadow_task_queue,
        workflows=[ShadowAssignmentWorkflow],
        **worker_options(),
        activities=activities.all(),
        # Shadows are best effort: keep them from crowding the database.
        max_concurrent_activities=20,
        max_concurrent_workflow_tasks=50,
    )


async def serve(settings: Settings) -> None:
    """Run the shadow worker alone (a separate process, e.g. with a database role
    that may only read and insert into observability_events)."""
    import asyncio
    import signal

    from seatflow.storage.db import make_engine
    from seatflow.storage.embedded import resolve_database_url

    engine = make_engine(resolve_database_url(settings.database_url), pool_size=5)
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"seatflow shadow worker: task queue {settings.shadow_task_queue} "
          f"on {settings.temporal_address}", flush=True)
    try:
        async with build_shadow_worker(client, engine, settings):
            await stop.wait()
    finally:
        await engine.dispose()


def main() -> None:
    import asyncio
    import sys

    from seatflow.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"seatflow shadow worker: {exc}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
