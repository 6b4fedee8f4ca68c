"""The intake relay: bookings accepted while Temporal is down keep their row and
intake row, and the relay starts each workflow exactly once when Temporal is back.

Every relay call here is scoped to the test's restaurant: the session database
is shared, and other tests leave intake rows pending on purpose.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.domain.intake import NewBooking
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.intake.relay import (
    BACKOFF_CAP_SECONDS,
    IntakeStartFailed,
    next_backoff,
    pending_intake,
    relay_once,
    run_relay,
)
from seatflow.service.bookings import create_booking, start_booking_workflow
from tests.cli_support import seatflow_cli
from tests.support import fetch, floorplan, import_plan, scalar, slot
from worker import build_worker

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def unreachable_client() -> Client:
    """A client for a Temporal that is down: lazy, so it fails on first use, quickly."""
    return await Client.connect(
        f"127.0.0.1:{closed_port()}", lazy=True,
        retry_config=RetryConfig(max_retries=1, max_elapsed_time_millis=500),
    )


@pytest.fixture
async def restaurant(db_engine: AsyncEngine, unique_id: str) -> str:
    rid = f"intake-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 2}, {"id": "T2", "capacity": 4}, {"id": "T3", "capacity": 4},
    ]))
    return rid


async def book_while_temporal_is_down(engine: AsyncEngine, restaurant: str,
                                      client: Client | None = None, party: int = 2) -> str:
    created = await create_booking(
        engine, client,
        NewBooking(restaurant_id=restaurant, party_size=party, start=slot(),
                   guest_name="Ada", guest_email=f"ada-{uuid.uuid4().hex[:6]}@example.com"),
        task_queue="unused-while-down", now=datetime.now(UTC),
    )
    assert not created.workflow_started
    return created.booking_id


async def intake_row(engine: AsyncEngine, booking_id: str) -> Any:
    rows = await fetch(engine, "SELECT workflow_id, started_at, last_error FROM intake_outbox "
                       "WHERE booking_id = CAST(:id AS uuid)", id=booking_id)
    assert len(rows) == 1
    return rows[0]


async def executions(client: Client, booking_id: str) -> list[str]:
    """Run ids of every execution with the booking's workflow id (visibility can lag)."""
    query = f'WorkflowId = "{booking_workflow_id(booking_id)}"'
    runs: list[str] = []
    for _ in range(50):
        runs = [wf.run_id async for wf in client.list_workflows(query)]
        if runs:
            return runs
        await asyncio.sleep(0.1)
    return runs


async def test_booking_made_while_temporal_is_down_keeps_its_row_and_intake_row(
    db_engine: AsyncEngine, restaurant: str,
) -> None:
    booking_id = await book_while_temporal_is_down(db_engine, restaurant)
    state = await scalar(db_engine, "SELECT assignment_state FROM bookings "
                         "WHERE id = CAST(:id AS uuid)", id=booking_id)
    assert state == "created"
    row = await intake_row(db_engine, booking_id)
    assert row.workflow_id == booking_workflow_id(booking_id)
    assert row.started_at is None
    pending = await pending_intake(db_engine, restaurant_ids=[restaurant])
    assert [p.booking_id for p in pending] == [booking_id]


async def test_unreachable_temporal_records_why_and_the_relay_retries_later(
    db_engine: AsyncEngine, restaurant: str, queue: str,
) -> None:
    down = await unreachable_client()
    booking_id = await book_while_temporal_is_down(db_engine, restaurant, client=down)
    row = await intake_row(db_engine, booking_id)
    assert row.started_at is None and row.last_error, "create_booking records why"
    with pytest.raises(IntakeStartFailed) as failed:
        await relay_once(db_engine, down, queue, restaurant_ids=[restaurant])
    assert failed.value.booking_id == booking_id and failed.value.started == 0
    assert booking_id in str(failed.value)
    row = await intake_row(db_engine, booking_id)
    assert row.started_at is None and row.last_error


async def test_relay_starts_the_workflow_exactly_once_and_the_booking_confirms(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    restaurant: str, queue: str, mailbox: Path,
) -> None:
    booking_id = await book_while_temporal_is_down(db_engine, restaurant)
    client = dev_env.client

    assert await relay_once(db_engine, client, queue, restaurant_ids=[restaurant]) == 1
    row = await intake_row(db_engine, booking_id)
    assert row.started_at is not None and row.last_error is None
    # A second pass finds nothing to do.
    assert await relay_once(db_engine, client, queue, restaurant_ids=[restaurant]) == 0
    assert len(await executions(client, booking_id)) == 1

    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        handle = client.get_workflow_handle(booking_workflow_id(booking_id))
        await asyncio.wait_for(handle.result(), timeout=30)
    state = await scalar(db_engine, "SELECT assignment_state FROM bookings "
                         "WHERE id = CAST(:id AS uuid)", id=booking_id)
    assert state == "confirmed"
    assert len(await executions(client, booking_id)) == 1
    assert len(list(mailbox.glob("*.eml"))) == 1


async def test_relay_after_a_crash_between_start_and_mark_joins_the_running_workflow(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, restaurant: str, queue: str,
) -> None:
    """create_booking started the workflow, then died before marking the row."""
    booking_id = await book_while_temporal_is_down(db_engine, restaurant)
    client = dev_env.client
    first = await start_booking_workflow(
        client, booking_id=booking_id, restaurant_id=restaurant, party_size=2, start=slot(),
        task_queue=queue,
    )
    assert await relay_once(db_engine, client, queue, restaurant_ids=[restaurant]) == 1
    assert await relay_once(db_engine, client, queue, restaurant_ids=[restaurant]) == 0
    runs = await executions(client, booking_id)
    assert runs == [first.result_run_id]
    description = await client.get_workflow_handle(booking_workflow_id(booking_id)).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING  # no worker on `queue`
    await client.get_workflow_handle(booking_workflow_id(booking_id)).terminate("test cleanup")


async def test_relay_loop_backs_off_while_temporal_is_down_then_starts_the_backlog(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, pg_url: str, restaurant: str, queue: str,
) -> None:
    from seatflow.config import load_settings

    booking_ids = [await book_while_temporal_is_down(db_engine, restaurant) for _ in range(3)]
    stop = asyncio.Event()
    down = load_settings(DATABASE_URL=pg_url, TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}",
                         SEATFLOW_TASK_QUEUE=queue)
    loop = asyncio.create_task(run_relay(down, stop=stop, poll_seconds=0.1,
                                         restaurant_ids=[restaurant]))
    await asyncio.sleep(1.5)
    assert not loop.done(), "the relay survives an unreachable Temporal"
    stop.set()
    assert await asyncio.wait_for(loop, timeout=10) == 0
    for booking_id in booking_ids:
        assert (await intake_row(db_engine, booking_id)).started_at is None

    up = load_settings(DATABASE_URL=pg_url,
                       TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
                       TEMPORAL_NAMESPACE=dev_env.client.namespace, SEATFLOW_TASK_QUEUE=queue)
    started = await asyncio.wait_for(
        run_relay(up, once=True, restaurant_ids=[restaurant]), timeout=30
    )
    assert started == 3
    for booking_id in booking_ids:
        assert (await intake_row(db_engine, booking_id)).started_at is not None
        assert len(await executions(dev_env.client, booking_id)) == 1
        await dev_env.client.get_workflow_handle(booking_workflow_id(booking_id)).terminate("cleanup")


def test_backoff_doubles_from_one_second_up_to_the_cap() -> None:
    delays = [None]
    for _ in range(8):
        delays.append(next_backoff(delays[-1]))
    assert delays[1:] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert BACKOFF_CAP_SECONDS == 30.0


async def test_intake_command_once_starts_pending_workflows_and_reports_json(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, pg_url: str, restaurant: str, queue: str,
) -> None:
    import json

    booking_id = await book_while_temporal_is_down(db_engine, restaurant)
    env = {**os.environ, "DATABASE_URL": pg_url, "SEATFLOW_TASK_QUEUE": queue,
           "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": dev_env.client.namespace}
    done = await seatflow_cli().arun(["intake", "--once", "--restaurant", restaurant, "--json"],
                                     env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["started"] == 1
    assert (await intake_row(db_engine, booking_id)).started_at is not None
    await dev_env.client.get_workflow_handle(booking_workflow_id(booking_id)).terminate("cleanup")

    down = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}"}
    await book_while_temporal_is_down(db_engine, restaurant)
    done = await seatflow_cli().arun(["intake", "--once", "--restaurant", restaurant], down,
                                     cwd=ROOT)
    assert done.returncode == 1
    assert "error:" in done.stderr


def test_relay_process_refuses_a_bad_configuration_naming_the_variable() -> None:
    env = {**os.environ, "SEATFLOW_MAX_ATTEMPTS": "0"}
    done = subprocess.run([sys.executable, "-m", "seatflow.intake.relay"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "SEATFLOW_MAX_ATTEMPTS" in done.stderr
