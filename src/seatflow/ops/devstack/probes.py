"""Probes: is a port open, is the database reachable, which workers poll the
task queue, and the registration of the search attributes (from the one list
in `seatflow.domain.search_attributes`); with a way to run them from sync code."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from seatflow.domain.search_attributes import REGISTRATION

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already has a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def _connect_temporal(address: str, namespace: str, timeout: float) -> Any:
    from temporalio.client import Client

    return await asyncio.wait_for(Client.connect(address, namespace=namespace), timeout)


async def ensure_search_attributes(address: str, namespace: str, timeout: float) -> list[str]:
    """Register any missing search attribute; returns the names it added.

    `start-dev --search-attribute` only registers on a fresh database, so a
    persisted var/temporal.db from an older version needs this.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    client = await _connect_temporal(address, namespace, timeout)
    ops = client.operator_service
    listed = await ops.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in REGISTRATION.items()
        if name not in listed.custom_attributes
    }
    if missing:
        try:
            await ops.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


async def pollers(address: str, namespace: str, task_queue: str) -> set[str]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    client = await _connect_temporal(address, namespace, 5)
    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    ))
    return {p.identity for p in resp.pollers}


async def database_reachable(url: str, timeout: float) -> None:
    import asyncpg  # type: ignore[import-untyped]

    from seatflow.storage.db import libpq_url

    conn = await asyncpg.connect(libpq_url(url), timeout=timeout)
    await conn.close()
