"""CPU-bound work of a request (availability's evaluation, a hold's plan
search) runs off the event loop, in a bounded pool of processes, within a
budget.

The API serves every client on one event loop: 20-100 ms of engine work per
availability call, run on it (or in a thread: the GIL then makes every other
request queue for the interpreter), delays every other client's request by
as much. With the pool configured (`configure`, done by the API at start-up)
at most `workers` such jobs run at once, each in a worker process (the
engine's own step and time budgets bound each job); a request that cannot
start its job within `wait_seconds` is refused with `CpuBusy` (the API
answers 503 `busy` with Retry-After) instead of queueing without bound.
Per-token rate limits (api/ratelimit.py) bound how often a client may ask;
the pool also takes turns: a client (`client`, set by the API to the
caller's token) has at most one job waiting for or holding a worker, its
other requests wait behind it in their own line, so another client's job
waits for at most the jobs already running, never for one client's queue.
Unconfigured (the CLI, one call at a time), the job runs inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_WAIT_SECONDS = 1.0

# Whose request this is (the API sets the token's name): jobs of one client
# take turns among themselves before they queue for a worker.
client: ContextVar[str | None] = ContextVar("seatflow_cpu_client", default=None)


class CpuBusy(Exception):
    """Every worker stayed busy for the whole wait: retry after a moment."""

    code = "busy"

    def __init__(self, waited: float) -> None:
        super().__init__(f"the server is busy (no engine worker free within {waited:g} s); "
                         "retry in a moment")
        self.retry_after = 1


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return fn(*args, **kwargs)


class CpuPool:
    def __init__(self, workers: int, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self.workers = max(1, workers)
        self.wait_seconds = wait_seconds
        # spawn: the API process has threads (uvicorn, database drivers)
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start)
        # one gate per event loop (the tests run several loops in one process)
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())
        self._turns: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.workers)
        return gate

    def _turn(self, key: str) -> asyncio.Lock:
        turns = self._turns.setdefault(asyncio.get_running_loop(), {})
        turn = turns.get(key)
        if turn is None:
            turn = turns[key] = asyncio.Lock()
        return turn

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` (a module-level function, its arguments
        picklable) in a worker process; raises CpuBusy when no worker frees
        up within the wait (its client's earlier jobs first, see `client`)."""
        key = client.get()
        if key is None:
            return await self._run(fn, args, kwargs, self.wait_seconds)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        turn = self._turn(key)
        try:
            await asyncio.wait_for(turn.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            raise CpuBusy(self.wait_seconds) from None
        try:
            return await self._run(fn, args, kwargs, max(0.0, deadline - loop.time()))
        finally:
            turn.release()

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
                   wait: float) -> T:
        gate = self._gate()
        try:
            await asyncio.wait_for(gate.acquire(), timeout=wait)
        except TimeoutError:
            raise CpuBusy(self.wait_seconds) from None
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, _call, fn, args, kwargs)
        finally:
            gate.release()

    def warm(self) -> None:
        """Start every worker process now (imports included), not on the first request."""
        for future in [self._executor.submit(_call, _warm, (), {}) for _ in range(self.workers)]:
            future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def lower_cpu_priority() -> None:
    """Make this process yield the CPU to every ordinary one: the Linux idle
    scheduling class (SCHED_IDLE), else the lowest nice. On a busy host the
    API's own requests, the workers' bookings, Temporal and PostgreSQL go
    first and the engine work of availability and holds takes the CPU that
    is left. The class matters more than a nice value: a nice process that
    holds a core delays each wake-up of an ordinary one by up to a time slice,
    and a booking wakes a process a few dozen times on its way to confirmed;
    an idle-class process is preempted at once."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # not Linux
        with contextlib.suppress(OSError, AttributeError):
            os.nice(19)


def _worker_start() -> None:
    """In each worker process: the lowest CPU priority, and an exit as soon as
    the API process is gone (a pool worker holds its own queue's ends, so it
    would otherwise wait for work forever after a SIGKILL of the API)."""
    lower_cpu_priority()
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="seatflow-cpu-parent-watch", daemon=True).start()


def _warm() -> None:
    import seatflow.engine.availability
    import seatflow.engine.search  # noqa: F401


_pool: CpuPool | None = None


def shutdown() -> None:
    """Stop the pool's worker processes (the API does when it stops)."""
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


def configure(workers: int, wait_seconds: float) -> None:
    """Run this process's CPU-bound jobs in a pool of `workers` processes
    (the API does at start-up); 0 workers: inline."""
    global _pool
    if _pool is not None and (workers, wait_seconds) == (_pool.workers, _pool.wait_seconds):
        return
    if _pool is not None:
        _pool.close()
    _pool = CpuPool(workers, wait_seconds) if workers > 0 else None
    if _pool is not None:
        _pool.warm()


async def run_cpu(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if _pool is None:
        return fn(*args, **kwargs)
    return await _pool.run(fn, *args, **kwargs)
