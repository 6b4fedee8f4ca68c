"""Database URLs, the async engine factory and the migration runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def async_url(url: str) -> str:
    """Turn any PostgreSQL URL (libpq style, as pgserver gives) into an asyncpg one."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    from seatflow.redact import mask_url

    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {mask_url(url)!r}")


def libpq_url(url: str) -> str:
    """The same URL as libpq and asyncpg.connect() understand it."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://"):]


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip per transaction. A connection that
        # died with the server fails its statement; SQLAlchemy invalidates the
        # pool and the activity retry (behind the circuit breaker) runs again.
        pool_pre_ping=False,
        pool_recycle=300,
        # A statement's parameters hold guest data (names, addresses, email
        # bodies): never repeat them in an error message, so never in a log.
        hide_parameters=True,
    )


@contextlib.asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose every statement commits on its own: no BEGIN and
    COMMIT round trips around a write that is one statement (issue 27)."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


async def ping(engine: AsyncEngine) -> None:
    """One round trip (health checks): raises when the database does not answer."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def _in_fresh_loop_thread(fn, *args) -> None:  # type: ignore[no-untyped-def]
    """Alembic's env.py runs its own event loop; never run it inside ours."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    _in_fresh_loop_thread(command.upgrade, _alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    _in_fresh_loop_thread(command.downgrade, _alembic_config(url), revision)
