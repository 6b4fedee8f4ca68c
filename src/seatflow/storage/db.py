"""Database URLs, the async engine factory, the migration runner, and the
driver connection the booking's hot path runs its statements on
(`connection`, `Statement`)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

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


# A session that sits inside a transaction this long without sending a
# statement is ended by PostgreSQL, releasing its row and advisory locks. Every
# transaction here is short (an attempt's search runs inside one: milliseconds,
# at most a few seconds on a starved box), so this only ever ends the session
# of a process that stopped mid-transaction without closing its socket (frozen,
# paused, cut off by the network). Without it, its locks, a restaurant's slot
# or holds gate among them, stay taken until TCP notices, which can take hours.
IDLE_IN_TRANSACTION_SECONDS = 60.0


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10,
                idle_in_transaction_seconds: float = IDLE_IN_TRANSACTION_SECONDS,
                ) -> AsyncEngine:
    """The async engine every process uses: its pool's sessions end a
    transaction left idle for `idle_in_transaction_seconds`."""
    idle_ms = max(1, round(idle_in_transaction_seconds * 1000))
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"server_settings": {
            "idle_in_transaction_session_timeout": str(idle_ms)}},
        # No pre-ping: it costs a round trip per transaction. A connection that
        # died with the server fails its statement; SQLAlchemy invalidates the
        # pool and the activity retry (behind the circuit breaker) runs again.
        pool_pre_ping=False,
        pool_recycle=300,
        # A statement's parameters hold guest data (names, addresses, email
        # bodies): never repeat them in an error message, so never in a log.
        hide_parameters=True,
    )


class Driver(Protocol):
    """The asyncpg connection under a pooled SQLAlchemy connection (the part
    of its interface storage uses). Statements run on it skip SQLAlchemy's
    per-statement layers (compiled-cache lookup, execution context, result
    wrapping, the greenlet hop: 0.20 against 0.06 ms of CPU a statement in a
    transaction, measured; issue 27) and
    use asyncpg's own prepared statement cache. The pool's json and jsonb
    codecs apply: json comes back decoded, a jsonb parameter is a JSON string."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    def transaction(self) -> Any: ...
    def is_closed(self) -> bool: ...
    def is_in_transaction(self) -> bool: ...


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Statement:
    """One SQL statement written with `:name` parameters, as asyncpg takes it
    (`$1`, `$2`, ...: each name one number, as SQLAlchemy numbers them).
    Made once, at import; `run`, `rows`, `row` and `value` execute it."""

    sql: str
    names: tuple[str, ...]
    source: str = field(default="", repr=False, compare=False)  # as written

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def run(self, db: Driver, **params: Any) -> str:
        return await db.execute(self.sql, *self.args(params))

    async def rows(self, db: Driver, **params: Any) -> list[Any]:
        return await db.fetch(self.sql, *self.args(params))

    async def row(self, db: Driver, **params: Any) -> Any:
        """The first row (a Record: `row["column"]`), or None."""
        return await db.fetchrow(self.sql, *self.args(params))

    async def value(self, db: Driver, **params: Any) -> Any:
        """The first column of the first row, or None."""
        return await db.fetchval(self.sql, *self.args(params))


def statement(sql: str) -> Statement:
    """`sql` with its `:name` parameters numbered (`::type` casts are left alone)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Statement(_NAMED.sub(number, sql), tuple(names), sql)


async def driver(conn: AsyncConnection) -> Driver:
    """The asyncpg connection under `conn`, its statements always inside
    `conn`'s transaction: SQLAlchemy begins one lazily, at its first
    statement, so when the driver connection has none yet a statement
    begins it here (off the hot path only). Without that, on a connection
    from `engine.connect()` they would commit on their own, outside the
    transaction SQLAlchemy starts next."""
    fairy = await conn.get_raw_connection()
    raw: Driver = fairy.driver_connection  # type: ignore[assignment]
    if not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return raw


def _connection_lost(exc: BaseException) -> bool:
    """An error after which the driver connection cannot be trusted: the
    server ended the session (SQLSTATE 08..., 57P..., 25P03 after an idle
    transaction), the socket failed,
    or the statement was abandoned half way (cancelled, timed out)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(("08", "57P")) or sqlstate == "25P03"
    return isinstance(exc, (OSError, asyncio.CancelledError, TimeoutError)) or (
        type(exc).__module__.startswith("asyncpg") and "InterfaceError" in {
            c.__name__ for c in type(exc).__mro__})


@contextlib.asynccontextmanager
async def connection(engine: AsyncEngine, *, transaction: bool = True
                     ) -> AsyncIterator[Driver]:
    """A connection of `engine`'s pool as its asyncpg connection (`Driver`).
    With `transaction`: one transaction, committed at the end, rolled back
    on an error. Without: every statement commits on its own (no BEGIN and
    COMMIT round trips around a write that is one statement). Taken from the
    pool and given back without an `AsyncConnection` around it (0.05 ms of
    CPU against 0.13 ms; issue 27). A connection an error left closed,
    inside a transaction or with its session lost is invalidated, never
    pooled again."""
    pooled = await engine.raw_connection()
    raw: Driver = pooled.driver_connection  # type: ignore[assignment]
    try:
        if transaction:
            async with raw.transaction():
                yield raw
        else:
            yield raw
    except BaseException as exc:
        if raw.is_closed() or raw.is_in_transaction() or _connection_lost(exc):
            # closing the driver connection awaits: finish it even if cancelled
            await asyncio.shield(greenlet_spawn(pooled.invalidate))
        raise
    else:
        # A transaction the caller began on the driver connection and left
        # open: the pool's reset-on-return only rolls back SQLAlchemy's own,
        # so the next caller would inherit it and its locks. Never pooled.
        if not raw.is_closed() and raw.is_in_transaction():
            await asyncio.shield(greenlet_spawn(pooled.invalidate))
    finally:
        # back to the pool (its reset-on-return has no transaction to roll back)
        await greenlet_spawn(pooled.close)


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
