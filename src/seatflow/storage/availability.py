"""The read availability makes: one consistent, read-only transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def consistent_read(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in one REPEATABLE READ, READ ONLY transaction: the policy,
    the snapshot and `snapshot_time` read on it see the same database state,
    and PostgreSQL itself refuses writes."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with conn.begin():
            yield conn
