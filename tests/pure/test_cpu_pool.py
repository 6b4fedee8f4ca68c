"""The API's CPU pool takes turns between clients: one client's queue of
engine jobs never stands between another client's job and a worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from seatflow.service import cpu


def wait_for(path: str) -> str:
    """A job that holds its worker until `path` exists (module level: picklable)."""
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path


async def test_another_clients_job_runs_before_one_clients_queue(tmp_path: Path) -> None:
    pool = cpu.CpuPool(workers=1, wait_seconds=60)
    pool.warm()
    gate = tmp_path / "go"
    done: list[str] = []

    async def job(client: str, name: str) -> None:
        cpu.client.set(client)
        await pool.run(wait_for, str(gate))
        done.append(name)

    try:
        hammer = [asyncio.create_task(job("hammer", f"h{k}")) for k in range(5)]
        await asyncio.sleep(0.2)  # h0 holds the only worker, h1-h4 wait in line
        booker = asyncio.create_task(job("booker", "b"))
        await asyncio.sleep(0.2)
        assert done == []  # nothing ran past the gate yet: the order below is the pool's
        gate.touch()
        await asyncio.gather(*hammer, booker)
    finally:
        pool.close()
    assert done[:2] == ["h0", "b"], done
    assert sorted(done) == ["b", "h0", "h1", "h2", "h3", "h4"]


def scheduling_policy() -> int:
    import os

    return os.sched_getscheduler(0)


async def test_a_job_runs_in_the_idle_scheduling_class() -> None:
    """Engine work yields the CPU to every ordinary process (bookings,
    Temporal, PostgreSQL): a worker preempted at once on their wake-ups."""
    import os

    pool = cpu.CpuPool(workers=1, wait_seconds=60)
    try:
        assert await pool.run(scheduling_policy) == os.SCHED_IDLE
    finally:
        pool.close()
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the API's own process is not lowered
