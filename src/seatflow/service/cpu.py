"""CPU-bound work of a request (availability's evaluation, a hold's plan
search) runs off the event loop, in a bounded pool, within a budget.

The API serves every client on one event loop: 20-30 ms of engine work per
availability call, run on it, delays every other client's request by as
much. Here at most `workers` such jobs run at once, each in a worker thread
(the engine's own step and time budgets bound each job); a request that
cannot start its job within `wait_seconds` is refused with `CpuBusy` (the
API answers 503 `busy` with Retry-After) instead of queueing without bound.
Per-token rate limits (api/ratelimit.py) keep one client from filling the pool.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_WORKERS = 2
DEFAULT_WAIT_SECONDS = 1.0


class CpuBusy(Exception):
    """Every worker stayed busy for the whole wait: retry after a moment."""

    code = "busy"

    def __init__(self, waited: float) -> None:
        super().__init__(f"the server is busy (no engine worker free within {waited:g} s); "
                         "retry in a moment")
        self.retry_after = 1


class CpuPool:
    def __init__(self, workers: int = DEFAULT_WORKERS,
                 wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self.workers = max(1, workers)
        self.wait_seconds = wait_seconds
        self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                            thread_name_prefix="seatflow-cpu")
        # one gate per event loop (the tests run several loops in one process)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.workers)
        return gate

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a pool thread; raises CpuBusy when no
        worker frees up within the wait."""
        gate = self._gate()
        try:
            await asyncio.wait_for(gate.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            raise CpuBusy(self.wait_seconds) from None
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        finally:
            gate.release()


_pool = CpuPool()


def configure(workers: int, wait_seconds: float) -> None:
    """Size the process's pool (the API does at start-up)."""
    global _pool
    if (workers, wait_seconds) != (_pool.workers, _pool.wait_seconds):
        _pool = CpuPool(workers, wait_seconds)


async def run_cpu(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await _pool.run(fn, *args, **kwargs)
