"""Container health check for the seatflow image (deploy/Dockerfile).

    python healthcheck.py worker   # DB answers and this container's worker polls
    python healthcheck.py relay    # DB and Temporal answer

Exit 0 healthy, 1 unhealthy (the reason on stderr). A worker is healthy only
when Temporal lists a poller on its task queue whose identity is this
container's (the SDK's default identity is `pid@hostname`).
"""

from __future__ import annotations

import asyncio
import socket
import sys

TIMEOUT_SECONDS = 8.0


async def check(role: str) -> str | None:
    import asyncpg  # type: ignore[import-untyped]
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    from seatflow.config import load_settings
    from seatflow.storage.db import libpq_url
    from seatflow.storage.embedded import resolve_database_url

    settings = load_settings()
    conn = await asyncpg.connect(libpq_url(resolve_database_url(settings.database_url)),
                                 timeout=TIMEOUT_SECONDS / 2)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    if role != "worker":
        return None
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    host = socket.gethostname()
    if not any(p.identity.endswith(f"@{host}") for p in response.pollers):
        return f"no worker of {host} polls task queue {settings.task_queue}"
    return None


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else "worker"
    try:
        problem = asyncio.run(asyncio.wait_for(check(role), TIMEOUT_SECONDS))
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
