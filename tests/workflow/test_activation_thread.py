"""How the workers run workflow activations (workflows/runner.py
`worker_options()`): on one thread of their own, not the SDK's pool of 100,
with the SDK's deadlock detector still failing a task that blocks."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.runner import worker_options


@workflow.defn(sandboxed=False)
class WhereAmI:
    @workflow.run
    async def run(self) -> str:
        return threading.current_thread().name


@workflow.defn(sandboxed=False)
class Blocking:
    @workflow.run
    async def run(self) -> None:
        time.sleep(2.5)  # noqa: ASYNC251 - blocks its thread on purpose: the detector's case


async def test_activations_run_on_one_thread_and_a_blocking_task_fails_as_a_deadlock(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    queue = f"activation-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[WhereAmI, Blocking],
                      **worker_options()):
        names = {await client.execute_workflow(WhereAmI.run, id=f"where-{queue}-{i}",
                                               task_queue=queue) for i in range(3)}
        assert len(names) == 1 and names.pop().startswith("workflow-activation"), names

        handle = await client.start_workflow(Blocking.run, id=f"blocking-{queue}",
                                             task_queue=queue)
        message = ""
        for _ in range(150):
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    message = event.workflow_task_failed_event_attributes.failure.message
            if message:
                break
            await asyncio.sleep(0.1)
        await handle.terminate("test over")
    assert "deadlock" in message.lower(), message
