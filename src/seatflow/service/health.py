"""Whether the two services seatflow needs answer: PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.storage.db import ping

HEALTH_TIMEOUT_SECONDS = 3.0


async def check_health(
    engine: AsyncEngine, client: Client, *, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> dict[str, str]:
    """`{"database": ..., "temporal": ...}`, each "ok" or "unreachable: <why>"
    (never raises); both are asked at once, each for at most `timeout` seconds."""
    database, temporal = await asyncio.gather(
        _probe(lambda: ping(engine), timeout),
        _probe(lambda: client.service_client.check_health(), timeout),
    )
    return {"database": database, "temporal": temporal}


async def _probe(check: Callable[[], Awaitable[Any]], timeout: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return f"unreachable: no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return f"unreachable: {type(exc).__name__}"
    return "ok"
