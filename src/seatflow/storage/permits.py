"""Per-restaurant concurrency permits as leases in PostgreSQL.

At most `max_parallel` bookings of one restaurant hold a permit (are between
search and confirm) at once, across every worker process. A permit is a row
(restaurant_id, slot) with a holder and a lease; a lease that runs out (its
worker died) is free for the next booking. Every holding is recorded in
`permit_intervals`, so the bound can be audited afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class _Handoff:
    """Wakes waiters in this process the moment a permit of their restaurant is
    released here (the usual case: one worker process runs both). Waiters for
    permits released by other processes fall back to polling, slowly, so that
    a queue of waiting bookings does not turn into a stream of queries."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, restaurant_id: str) -> asyncio.Event:
        event = self._events.get(restaurant_id)
        if event is None:
            event = self._events[restaurant_id] = asyncio.Event()
        return event

    def released(self, restaurant_id: str) -> None:
        event = self._events.pop(restaurant_id, None)
        if event is not None:
            event.set()


handoff = _Handoff()
POLL_SECONDS = 0.25

# Restaurants whose permits the current unit of work released: announced to
# local waiters only after it committed (a waiter woken earlier would find the
# row still locked and go back to sleep).
_released_here: ContextVar[list[str] | None] = ContextVar("released_here", default=None)


@contextmanager
def announce_releases() -> Iterator[None]:
    """Wrap a unit of work that may release permits; wakes waiters after it."""
    token = _released_here.set([])
    try:
        yield
        for restaurant_id in _released_here.get() or []:
            handoff.released(restaurant_id)
    finally:
        _released_here.reset(token)


@dataclass(frozen=True)
class PermitGrant:
    granted: bool
    slot: int | None = None
    wait_ms: float = 0.0


async def try_acquire(
    conn: AsyncConnection, restaurant_id: str, booking_id: str, max_parallel: int,
    lease_seconds: float,
) -> int | None:
    """One non-blocking try; returns the slot or None. Re-entrant per booking."""
    await conn.execute(
        text(
            "INSERT INTO restaurant_permits (restaurant_id, slot) "
            "SELECT :r, g FROM generate_series(1, :n) AS g ON CONFLICT DO NOTHING"
        ),
        {"r": restaurant_id, "n": max_parallel},
    )
    row = (
        await conn.execute(
            text(
                "SELECT slot, booking_id::text AS holder, lease_until FROM restaurant_permits "
                "WHERE restaurant_id = :r AND slot <= :n AND (booking_id IS NULL "
                "OR booking_id = CAST(:b AS uuid) OR lease_until < clock_timestamp()) "
                "ORDER BY (booking_id = CAST(:b AS uuid)) IS TRUE DESC, slot "
                "LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            {"r": restaurant_id, "n": max_parallel, "b": booking_id},
        )
    ).one_or_none()
    if row is None:
        return None
    if row.holder == booking_id:
        await conn.execute(
            text("UPDATE restaurant_permits SET lease_until = clock_timestamp() + "
                 "make_interval(secs => :l) WHERE restaurant_id = :r AND slot = :s"),
            {"r": restaurant_id, "s": row.slot, "l": lease_seconds},
        )
        return int(row.slot)
    if row.holder is not None:
        # A lease ran out: its holder's worker died. Close its interval at expiry.
        await conn.execute(
            text(
                "UPDATE permit_intervals SET released_at = :until WHERE restaurant_id = :r "
                "AND booking_id = CAST(:b AS uuid) AND slot = :s AND released_at IS NULL"
            ),
            {"r": restaurant_id, "b": row.holder, "s": row.slot, "until": row.lease_until},
        )
    await conn.execute(
        text(
            "UPDATE restaurant_permits SET booking_id = CAST(:b AS uuid), holder = :b, "
            "acquired_at = clock_timestamp(), lease_until = clock_timestamp() + "
            "make_interval(secs => :l) WHERE restaurant_id = :r AND slot = :s"
        ),
        {"r": restaurant_id, "s": row.slot, "b": booking_id, "l": lease_seconds},
    )
    return int(row.slot)


async def acquire(
    engine: AsyncEngine,
    restaurant_id: str,
    booking_id: str,
    *,
    max_parallel: int,
    lease_seconds: float,
    wait_seconds: float,
    heartbeat: object = None,
) -> PermitGrant:
    """Wait up to `wait_seconds` for a permit: woken at once by a release in
    this process, otherwise re-checking every POLL_SECONDS."""
    started = time.perf_counter()
    while True:
        released = handoff.event(restaurant_id)
        async with engine.begin() as conn:
            slot = await try_acquire(conn, restaurant_id, booking_id, max_parallel, lease_seconds)
            waited = (time.perf_counter() - started) * 1000
            if slot is not None:
                await conn.execute(
                    text(
                        "INSERT INTO permit_intervals (restaurant_id, booking_id, slot, "
                        "acquired_at, wait_ms) SELECT :r, CAST(:b AS uuid), :s, "
                        "clock_timestamp(), :w WHERE NOT EXISTS (SELECT 1 FROM permit_intervals "
                        "WHERE restaurant_id = :r AND booking_id = CAST(:b AS uuid) AND slot = :s "
                        "AND released_at IS NULL)"
                    ),
                    {"r": restaurant_id, "b": booking_id, "s": slot, "w": waited},
                )
                return PermitGrant(True, slot, round(waited, 3))
        if waited / 1000 >= wait_seconds:
            return PermitGrant(False, None, round(waited, 3))
        if callable(heartbeat):
            heartbeat()
        left = wait_seconds - waited / 1000
        try:
            await asyncio.wait_for(released.wait(), timeout=max(0.001, min(POLL_SECONDS, left)))
        except TimeoutError:
            pass


async def release(conn: AsyncConnection, booking_id: str) -> str | None:
    """Release whatever permit the booking holds (inside the caller's transaction,
    so the permit is free exactly when the attempt's outcome is committed).
    Returns the restaurant whose permit was freed: call `handoff.released()`
    with it after the commit."""
    await conn.execute(
        text(
            "UPDATE permit_intervals SET released_at = clock_timestamp() WHERE "
            "booking_id = CAST(:b AS uuid) AND released_at IS NULL"
        ),
        {"b": booking_id},
    )
    freed = await conn.execute(
        text(
            "UPDATE restaurant_permits SET booking_id = NULL, holder = NULL, acquired_at = NULL, "
            "lease_until = NULL WHERE booking_id = CAST(:b AS uuid) RETURNING restaurant_id"
        ),
        {"b": booking_id},
    )
    restaurant_id = freed.scalar()
    pending = _released_here.get()
    if restaurant_id is not None and pending is not None:
        pending.append(restaurant_id)
    return restaurant_id
