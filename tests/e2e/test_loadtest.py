"""A small load test against the Temporal dev server and a worker in this
process: every booking settles, no table is double-booked, no email is sent
twice, and no restaurant ever has more bookings between search and confirm
than MAX_PARALLEL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings, load_flags
from seatflow.ops.loadtest import restaurant_ids, run_loadtest
from worker import build_worker

pytestmark = pytest.mark.e2e


async def test_fifty_bookings_over_five_restaurants_keep_the_invariants(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, mailbox: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("seatflow.ops.loadtest.RESTAURANT_PREFIX", f"lt{uuid.uuid4().hex[:6]}-")
    queue = f"loadtest-{uuid.uuid4().hex[:8]}"
    client = dev_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        result = await run_loadtest(
            db_engine, client, bookings=50, restaurants=5, task_queue=queue, concurrency=25,
            mailbox=mailbox, timeout=180, console=Console(quiet=True), show_progress=False,
            seed=7, max_parallel=load_flags().max_parallel,
        )
    assert len(restaurant_ids(5)) == 5
    assert result.created == 50 and result.rejected == 0
    assert result.unsettled == 0, result.outcomes
    assert result.outcomes == {"confirmed": 50}
    assert result.double_booked_table_minutes == 0
    assert result.duplicate_emails == 0 and result.missing_emails == 0
    assert result.latency_seconds["p95"] is not None
    if result.max_concurrency is not None:  # permits recorded
        assert result.max_concurrency <= load_flags().max_parallel
    data = result.to_dict()
    assert data["invariants_hold"] is True and "booking_ids" not in data
