"""The shadow worker: `ShadowAssignmentWorkflow` and its read-only activities.

It serves its own task queue (`SEATFLOW_SHADOW_TASK_QUEUE`, default
`seatflow-shadow`) and registers no activity that can allocate a table, change
a booking's state or send an email, so a shadow cannot have side effects by
construction (DESIGN.md section 6).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.shadow import ShadowActivities
from seatflow.config import Settings
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
        activities=activities.all(),
        # Shadows are best effort: keep them from crowding the database.
        max_concurrent_activities=20,
        max_concurrent_workflow_tasks=50,
    )
