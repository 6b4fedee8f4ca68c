"""Scaling out (issue 7 item 2, docs/deploy.md): `seatflow dev up
--workers 3` runs three worker processes on one task queue, and 100 bookings
over 4 restaurants, created through the real intake (`run_loadtest`), are each
settled exactly once: one BookingAssignmentWorkflow execution per booking (from
the visibility API), every booking confirmed, in manual review or failed with
a reason, per-restaurant permits never above MAX_PARALLEL=3 although the
permits were held from different processes at once, the work spread over more
than one worker process (the `identity` of the WorkflowTaskCompleted events in
each history), no double-booked table-minute and at most one email a booking.

The counts are printed as one JSON line (`pytest -s` shows them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.domain.states import AUTOMATIC_OUTCOMES
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.ops import devstack
from seatflow.ops.loadtest import email_figures, mailbox_counts, restaurant_ids, run_loadtest
from tests.e2e.test_devstack import Stack, isolated_env, stack  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

WORKERS = 3
BOOKINGS = 100
RESTAURANTS = 4
MAX_PARALLEL = 3
WORKFLOW_TYPE = "BookingAssignmentWorkflow"
# Where a booking may end without an operator: the domain's named set.
SETTLED = tuple(str(state) for state in AUTOMATIC_OUTCOMES)
BUDGET_SECONDS = 90.0


def worker_env(home: Path) -> dict[str, str]:
    return {
        "FEATURE_ASSIGNMENT_PIPELINE_V3": "true",
        "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL": str(MAX_PARALLEL),
        "SEATFLOW_RETRY_BASE_SECONDS": "0.05",
        "SEATFLOW_RETRY_CAP_SECONDS": "0.5",
        "SEATFLOW_MAILBOX_DIR": str(home / "var" / "mailbox"),
    }


async def pollers(client: Client, task_queue: str) -> set[str]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    return {p.identity for p in resp.pollers}


async def wait_for_pollers(client: Client, task_queue: str, pids: set[int],
                           deadline: float) -> set[str]:
    """Until every worker process polls the queue, so the first ones get no head start."""
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = await pollers(client, task_queue)
        if {int(i.split("@", 1)[0]) for i in seen if i.split("@", 1)[0].isdigit()} >= pids:
            return seen
        await asyncio.sleep(0.2)
    pytest.fail(f"not every worker polls {task_queue}: pids {sorted(pids)}, pollers {seen}")


async def wait_closed(client: Client, deadline: float) -> int:
    """Until no BookingAssignmentWorkflow runs (the confirmation email is the last step)."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    running = -1
    while time.monotonic() < deadline:
        running = (await client.count_workflows(query)).count
        if running == 0:
            return 0
        await asyncio.sleep(0.25)
    return running


async def executions(client: Client, expected: int, deadline: float) -> list[Any]:
    """Every BookingAssignmentWorkflow execution visibility knows, once it knows `expected`."""
    found: list[Any] = []
    while time.monotonic() < deadline:
        found = [wf async for wf in client.list_workflows(f"WorkflowType = '{WORKFLOW_TYPE}'")]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.25)
    return found


async def worker_identities(client: Client, workflow_ids: list[str]) -> dict[str, set[str]]:
    """Per workflow: the identities of the workers that completed its workflow tasks
    (and ran its activities; most steps are local activities, inside those tasks)."""
    gate = asyncio.Semaphore(20)

    async def one(wid: str) -> tuple[str, set[str]]:
        async with gate:
            history = await client.get_workflow_handle(wid).fetch_history()
        ids: set[str] = set()
        for event in history.events:
            if event.HasField("workflow_task_completed_event_attributes"):
                ids.add(event.workflow_task_completed_event_attributes.identity)
            elif event.HasField("activity_task_started_event_attributes"):
                ids.add(event.activity_task_started_event_attributes.identity)
        ids.discard("")
        return wid, ids

    return dict(await asyncio.gather(*(one(w) for w in workflow_ids)))


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def cross_process_overlaps(intervals: list[Any], by_booking: dict[str, set[str]]) -> int:
    """Pairs of permits of one restaurant held at the same moment by bookings that
    different worker processes ran: the bound is enforced across processes."""
    pairs = 0
    for i, a in enumerate(intervals):
        for b in intervals[i + 1:]:
            if a.restaurant_id != b.restaurant_id:
                continue
            if a.acquired_at < b.released_at and b.acquired_at < a.released_at:
                wa, wb = by_booking.get(a.booking_id, set()), by_booking.get(b.booking_id, set())
                if wa and wb and wa.isdisjoint(wb):
                    pairs += 1
    return pairs


async def scenario(status: devstack.StackStatus, home: Path, started: float) -> dict[str, Any]:
    from seatflow.storage.db import make_engine

    deadline = started + BUDGET_SECONDS
    pids = {int(w.pid) for w in status.workers if w.pid is not None}
    assert status.database_url and status.temporal_address
    client = await Client.connect(status.temporal_address, namespace=status.namespace)
    engine = make_engine(status.database_url, pool_size=10, max_overflow=10)
    try:
        polling = await wait_for_pollers(client, status.task_queue, pids, deadline)
        mailbox = home / "var" / "mailbox"
        result = await run_loadtest(
            engine, client, bookings=BOOKINGS, restaurants=RESTAURANTS,
            task_queue=status.task_queue, concurrency=25, mailbox=mailbox,
            timeout=max(5.0, deadline - time.monotonic() - 15), console=Console(quiet=True),
            show_progress=False, seed=11, max_parallel=MAX_PARALLEL,
        )
        ids = result.booking_ids
        still_running = await wait_closed(client, deadline)
        found = await executions(client, len(ids), deadline)
        runs_per_booking = Counter(wf.id for wf in found)
        statuses = Counter(wf.status.name if wf.status else "?" for wf in found)
        identities = await worker_identities(client, [booking_workflow_id(b) for b in ids])

        booking_rows = await rows(
            engine,
            "SELECT b.id::text AS id, b.restaurant_id, b.assignment_state AS state, "
            "b.last_reason AS reason, (SELECT count(*) FROM email_outbox e "
            "WHERE e.booking_id = b.id) AS outbox_rows FROM bookings b "
            "WHERE b.id = ANY(CAST(:ids AS uuid[]))", ids=ids)
        intervals = await rows(
            engine,
            "SELECT restaurant_id, booking_id::text AS booking_id, acquired_at, "
            "COALESCE(released_at, clock_timestamp()) AS released_at FROM permit_intervals "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[])) ORDER BY acquired_at", ids=ids)
        duplicates, suppressed, missing = await email_figures(engine, mailbox, ids)
    finally:
        await engine.dispose()

    by_booking = {b: identities.get(booking_workflow_id(b), set()) for b in ids}
    per_worker = Counter(i for s in by_booking.values() for i in s)
    restaurant_of = {r.id: r.restaurant_id for r in booking_rows}
    workers_per_restaurant = {
        rid: len({i for b, s in by_booking.items() if restaurant_of.get(b) == rid for i in s})
        for rid in restaurant_ids(RESTAURANTS)}
    emails = mailbox_counts(mailbox, ids)
    states = Counter(r.state for r in booking_rows)
    return {
        "scenario": "scale-out",
        "workers": len(pids),
        "pollers": sorted(polling),
        "bookings": BOOKINGS,
        "created": result.created,
        "rejected_at_intake": result.rejected,
        "confirmed": states["confirmed"],
        "manual_review": states["manual_review"],
        "failed": states["failed"],
        "failed_without_reason": sum(r.state == "failed" and not r.reason for r in booking_rows),
        "unsettled": sum(r.state not in SETTLED for r in booking_rows),
        "workflow_executions": len(found),
        "bookings_with_one_execution": sum(runs_per_booking[booking_workflow_id(b)] == 1 for b in ids),
        "executions_not_of_these_bookings": len(set(runs_per_booking)
                                                - {booking_workflow_id(b) for b in ids}),
        "execution_statuses": dict(statuses),
        "still_running": still_running,
        "bookings_per_worker": dict(sorted(per_worker.items())),
        "bookings_on_several_workers": sum(len(s) > 1 for s in by_booking.values()),
        "bookings_without_worker": sum(not s for s in by_booking.values()),
        "workers_per_restaurant": workers_per_restaurant,
        "permit_intervals": len(intervals),
        "max_concurrency_per_restaurant": result.max_concurrency_per_restaurant,
        "cross_process_permit_overlaps": cross_process_overlaps(intervals, by_booking),
        "double_booked_minutes": result.double_booked_table_minutes,
        "duplicate_emails": duplicates,
        "duplicate_sends_suppressed": suppressed,
        "confirmed_without_email": missing,
        "max_emails_per_booking": max(emails.values(), default=0),
        "max_outbox_rows_per_booking": max((int(r.outbox_rows) for r in booking_rows), default=0),
        "loadtest_seconds": result.seconds,
    }


def test_three_workers_settle_a_hundred_bookings_once(stack: Stack) -> None:  # noqa: F811
    started = time.monotonic()
    status = devstack.up(WORKERS, temporal_port=stack.port, ui_port=stack.ui_port,
                         metrics_port=stack.metrics_port, worker_env=worker_env(stack.home),
                         timeout=60, worker_ready_timeout=30)
    assert status.running, json.dumps(status.to_dict(), indent=2)
    assert [w.name for w in status.workers] == ["worker-1", "worker-2", "worker-3"]
    up_seconds = time.monotonic() - started

    counts = asyncio.run(scenario(status, stack.home, started))
    counts["stack_up_seconds"] = round(up_seconds, 2)
    counts["total_seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(counts), flush=True)

    # Every booking settled, exactly once.
    assert counts["created"] == BOOKINGS and counts["rejected_at_intake"] == 0
    assert counts["unsettled"] == 0, counts
    assert counts["confirmed"] + counts["manual_review"] + counts["failed"] == BOOKINGS
    assert counts["failed_without_reason"] == 0
    assert counts["workflow_executions"] == BOOKINGS, counts
    assert counts["bookings_with_one_execution"] == BOOKINGS, counts
    assert counts["executions_not_of_these_bookings"] == 0
    assert counts["still_running"] == 0
    assert counts["execution_statuses"] == {"COMPLETED": BOOKINGS}, counts
    # Permits: never more than MAX_PARALLEL of one restaurant at once, across processes.
    assert set(counts["max_concurrency_per_restaurant"]) == set(restaurant_ids(RESTAURANTS))
    assert all(0 < n <= MAX_PARALLEL for n in counts["max_concurrency_per_restaurant"].values())
    assert counts["permit_intervals"] >= BOOKINGS
    assert any(n > 1 for n in counts["workers_per_restaurant"].values()), counts
    # ...and the bound was exercised: permits of one restaurant held at the same
    # moment by bookings that different processes ran.
    assert counts["cross_process_permit_overlaps"] > 0, counts
    # The work was spread over the worker processes.
    assert counts["bookings_without_worker"] == 0
    worker_pids = {str(w.pid) for w in status.workers}
    assert {i.split("@", 1)[0] for i in counts["bookings_per_worker"]} <= worker_pids
    assert len(counts["bookings_per_worker"]) > 1, counts
    # No table double-booked, no guest mailed twice.
    assert counts["double_booked_minutes"] == 0
    assert counts["duplicate_emails"] == 0 and counts["max_emails_per_booking"] <= 1
    assert counts["max_outbox_rows_per_booking"] <= 1
    assert counts["confirmed_without_email"] == 0
    assert counts["total_seconds"] < BUDGET_SECONDS
