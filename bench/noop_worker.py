"""The ceiling's worker (bench/pipeline.py): a trivial workflow of two no-op
activities, and one of N no-op local activities in its one workflow task (a
booking's shape: one task, three local activities, with no work in them),
served by a separate process with the production worker's settings (the
same slot counts and the same workflow runner).

    python bench/noop_worker.py TEMPORAL_ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self) -> None:
        for _ in range(2):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="BenchLocalWorkflow")
class LocalWorkflow:
    @workflow.run
    async def run(self, local_activities: int) -> None:
        for _ in range(local_activities):
            await workflow.execute_local_activity(
                noop, start_to_close_timeout=timedelta(seconds=30))


async def serve(address: str, queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    import worker as production
    from workflows.runner import worker_options

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=queue, workflows=[NoopWorkflow, LocalWorkflow],
                      activities=[noop],
                      **worker_options(),  # the production worker's (no sandbox, one activation thread)
                      max_concurrent_activities=production.MAX_CONCURRENT_ACTIVITIES,
                      max_concurrent_workflow_tasks=production.MAX_CONCURRENT_WORKFLOW_TASKS):
        print("noop worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    # Import ourselves as `noop_worker`, so that the workflow's module has a
    # real name the sandbox can pass through (not __main__).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import noop_worker

    asyncio.run(noop_worker.serve(sys.argv[1], sys.argv[2]))
