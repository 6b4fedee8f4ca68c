"""The database a front door works on: a connection pool for one command (or
one server) and the schema migrations.

The URL is DATABASE_URL (or the one given) when set, otherwise the embedded
PostgreSQL server under var/pg, started on first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.storage.db import downgrade, make_engine, upgrade
from seatflow.storage.embedded import resolve_database_url


@asynccontextmanager
async def open_database(
    url: str | None = None, *, pool_size: int = 2, max_overflow: int = 0
) -> AsyncIterator[AsyncEngine]:
    """A connection pool on `url` (or DATABASE_URL, or the embedded server),
    disposed of when the block ends."""
    engine = make_engine(resolve_database_url(url), pool_size=pool_size,
                         max_overflow=max_overflow)
    try:
        yield engine
    finally:
        await engine.dispose()


def migrate(revision: str = "head", *, url: str | None = None) -> None:
    """Apply the schema migrations up to `revision`."""
    upgrade(resolve_database_url(url), revision)


def revert(revision: str, *, url: str | None = None) -> None:
    """Revert the schema migrations down to `revision` (`base`: an empty database)."""
    downgrade(resolve_database_url(url), revision)
