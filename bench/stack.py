"""The benches' embedded stack: PostgreSQL (pgserver in a temporary
directory, migrated), the Temporal dev server (the `temporal` binary next to
the interpreter), and the environment a `python -m worker` (or API) process
needs to join them, and a burst of bookings through the real intake
(`book`). One place for what bench/pipeline.py, bench/api.py and
bench/overhead.py start:

    async with embedded_stack("seatflow-bench-") as stack:
        env = stack.process_env(SEATFLOW_TASK_QUEUE="q")
        subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT)
        ... stack.client, stack.database_url, stack.pg_dir ...

On exit the dev server stops, the database stops and the directory goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent


def binary(name: str) -> str:
    """A tool installed next to the interpreter (the venv), else on PATH."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable}; run `make install`")
    return found


@dataclass(frozen=True)
class Stack:
    tmp: Path  # the stack's directory (the mailbox goes in tmp / "mailbox")
    database_url: str
    client: Any  # temporalio.client.Client of the dev server
    address: str  # the dev server's host:port

    @property
    def pg_dir(self) -> Path:
        """PostgreSQL's data directory (postmaster.pid: the server's pid)."""
        return self.tmp / "pg"

    @property
    def mailbox(self) -> Path:
        return self.tmp / "mailbox"

    def process_env(self, **extra: str) -> dict[str, str]:
        """The environment of a seatflow process (worker, API) on this stack:
        V3 on, JSON logs, no metrics port, the file mailbox in the stack's
        directory, src/ and bench/ importable; `extra` on top."""
        env = dict(os.environ, DATABASE_URL=self.database_url, TEMPORAL_ADDRESS=self.address,
                   SEATFLOW_METRICS_ADDRESS="off", SEATFLOW_LOG_FORMAT="json",
                   SEATFLOW_MAILBOX_DIR=str(self.mailbox),
                   FEATURE_ASSIGNMENT_PIPELINE_V3="true",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "bench")]))
        env.pop("FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL", None)
        env.update(extra)
        return env


@contextlib.contextmanager
def embedded_postgres(prefix: str) -> Iterator[tuple[Path, str]]:
    """A migrated PostgreSQL in a new temporary directory: (the directory,
    its URL). On exit the database stops and the directory goes."""
    from seatflow.storage.db import upgrade
    from seatflow.storage.embedded import start_embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        url = start_embedded_postgres(tmp / "pg", persistent=False)
        upgrade(url)
        yield tmp, url
    finally:
        with contextlib.suppress(Exception):
            import pgserver

            pgserver.get_server(tmp / "pg").cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.asynccontextmanager
async def embedded_stack(prefix: str = "seatflow-bench-") -> AsyncIterator[Stack]:
    """Start PostgreSQL and the Temporal dev server; stop both on exit. The
    dev server's banner goes to stderr (a bench's stdout is its JSON)."""
    from temporalio.testing import WorkflowEnvironment

    from seatflow.domain.search_attributes import ALL

    with embedded_postgres(prefix) as (tmp, url):
        saved_stdout = os.dup(1)
        os.dup2(2, 1)
        try:
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=binary("temporal"), search_attributes=list(ALL),
                dev_server_log_level="error", ui=False)
        finally:
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
        try:
            yield Stack(tmp=tmp, database_url=url, client=env.client,
                        address=env.client.service_client.config.target_host)
        finally:
            await env.shutdown()


async def book(engine: Any, client: Any, queue: str, prefix: str, bookings: int,
               restaurants: int, seed: int, rate: float | None = None
               ) -> tuple[list[str], list[str], float]:
    """Create `bookings` over fresh restaurants (at once, or at `rate` per
    second); wait for every workflow result. Returns (booking ids,
    restaurant ids, seconds from the first create to the last result)."""
    from seatflow.domain.intake import NewBooking
    from seatflow.domain.workflow_ids import booking_workflow_id
    from seatflow.ops.loadtest import ensure_restaurants, first_free_evening, plan_bookings
    from seatflow.service.bookings import create_booking

    ids = [f"{prefix}-{i}" for i in range(1, restaurants + 1)]
    _, tz_name = await ensure_restaurants(
        engine, ids, ROOT / "examples" / "floorplans" / "harbour-kitchen.json")
    tz = ZoneInfo(tz_name)
    planned = plan_bookings(bookings, ids, await first_free_evening(engine, ids, tz), tz,
                            random.Random(seed))
    started = time.perf_counter()

    async def one(k: int, b: Any) -> str:
        if rate:
            await asyncio.sleep(max(0.0, started + k / rate - time.perf_counter()))
        made = await create_booking(engine, client, NewBooking(
            restaurant_id=b.restaurant_id, party_size=b.party_size, start=b.start,
            guest_name=f"Bench {k}", guest_email=f"bench-{k}@example.com"), task_queue=queue)
        await client.get_workflow_handle(booking_workflow_id(made.booking_id)).result()
        return made.booking_id

    created = await asyncio.gather(*(one(k, b) for k, b in enumerate(planned)))
    return list(created), ids, time.perf_counter() - started
