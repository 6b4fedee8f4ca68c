"""Per-restaurant assignment slots that PostgreSQL releases by itself.

At most `max_parallel` bookings of one restaurant are between "read the
floor" and "commit the confirm" at once, across every worker process. A slot
is a transaction-scoped advisory lock on (restaurant, slot number): it is
taken inside the attempt's transaction and released by PostgreSQL when that
transaction commits or rolls back, or when the worker's connection dies. No
lease to wait out, and nothing is ever held while a workflow sleeps.

Two levels, so that waiting is cheap:

* in this process, an `asyncio.Semaphore` per restaurant queues attempts
  fairly (first come, first served) without touching the database;
* across processes, `pg_try_advisory_xact_lock` decides. When every slot is
  held by other processes the attempt polls briefly, then gives up ("busy")
  and the workflow waits on a durable timer before trying again.

Keys: the advisory lock's two-integer form, (hashtext('seatflow.slot:' ||
restaurant), slot). Two restaurants whose names hash alike share slots: that
can only make the bound stricter, never looser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from seatflow.storage.db import Driver, statement

# How often an attempt that holds a local slot re-tries the database slots when
# other processes hold all of them: first after DB_POLL_SECONDS, then twice as
# long each time up to DB_POLL_MAX_SECONDS (a round trip per try, so a fixed
# 20 ms poll cost more CPU the longer the wait; issue 27).
DB_POLL_SECONDS = 0.02
DB_POLL_MAX_SECONDS = 0.16

TRY_SLOT = statement(
    "SELECT s FROM generate_series(1, CAST(:n AS integer)) AS s "
    "WHERE pg_try_advisory_xact_lock(hashtext('seatflow.slot:' || CAST(:r AS text)), s) "
    "LIMIT 1"
)


class SlotBusy(Exception):
    """Every slot stayed taken for the whole bounded wait."""

    def __init__(self, waited_ms: float):
        super().__init__(f"no slot free within {waited_ms:.0f} ms")
        self.waited_ms = waited_ms


class _LocalGates:
    """One semaphore per (restaurant, max_parallel) in this process."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, int], asyncio.Semaphore] = {}

    def gate(self, restaurant_id: str, max_parallel: int) -> asyncio.Semaphore:
        key = (restaurant_id, max_parallel)
        sem = self._gates.get(key)
        if sem is None:
            sem = self._gates[key] = asyncio.Semaphore(max_parallel)
        return sem


local_gates = _LocalGates()


@asynccontextmanager
async def local_slot(restaurant_id: str, max_parallel: int, wait_seconds: float
                     ) -> AsyncIterator[float]:
    """Queue for one of this process's slots of the restaurant; yields the
    time waited in ms. Raises SlotBusy after `wait_seconds`."""
    sem = local_gates.gate(restaurant_id, max_parallel)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(sem.acquire(), timeout=max(0.001, wait_seconds))
    except TimeoutError:
        raise SlotBusy((time.perf_counter() - started) * 1000) from None
    try:
        yield (time.perf_counter() - started) * 1000
    finally:
        sem.release()


async def take_db_slot(conn: Driver, restaurant_id: str, max_parallel: int,
                       deadline: float) -> int:
    """Take one of the restaurant's slots inside the caller's transaction
    (released at its end). Polls, backing off, until `deadline`
    (perf_counter seconds)."""
    pause = DB_POLL_SECONDS
    while True:
        slot = await TRY_SLOT.value(conn, n=max_parallel, r=restaurant_id)
        if slot is not None:
            return int(slot)
        left = deadline - time.perf_counter()
        if left <= 0:
            raise SlotBusy(0.0)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, DB_POLL_MAX_SECONDS)
