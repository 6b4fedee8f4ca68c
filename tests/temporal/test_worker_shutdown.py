"""Graceful shutdown: SIGTERM (Worker.shutdown) lets a running activity finish."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings
from seatflow.service.bookings import start_booking_workflow
from tests.support import fetch, floorplan, import_plan, new_booking, scalar, slot
from worker import build_worker


async def test_shutdown_lets_a_running_email_send_finish(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
    mailbox: Path,
) -> None:
    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    start = slot()
    booking = await new_booking(db_engine, rid, 2, start=start)
    # The email row exists up front (the confirm's insert then does nothing) and
    # the test holds its row lock: the email activity is known to be in flight,
    # waiting on that lock, when the worker is told to stop.
    async with db_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) VALUES "
            "(CAST(:b AS uuid), 'confirmation', 'guest@example.com', 'Your table', 'See you')"),
            {"b": booking})
    holder = await db_engine.connect()
    tx = await holder.begin()
    await holder.execute(text("SELECT 1 FROM email_outbox WHERE booking_id = CAST(:b AS uuid) "
                              "FOR UPDATE"), {"b": booking})
    queue = f"shutdown-{uuid.uuid4().hex[:8]}"
    client = dev_env.client
    worker = build_worker(client, db_engine, test_settings, task_queue=queue)
    running = asyncio.create_task(worker.run())
    handle = await start_booking_workflow(client, booking_id=booking, restaurant_id=rid,
                                          party_size=2, start=start, task_queue=queue)
    try:
        waiting = 0
        for _ in range(1500):
            waiting = await scalar(
                db_engine,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%FROM email_outbox%FOR UPDATE%' AND pid <> pg_backend_pid()")
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting == 1, "the email activity never reached the outbox row"
        assert await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                            "CAST(:b AS uuid)", b=booking) == "confirmed"
        stopping = asyncio.create_task(worker.shutdown())
        # Give a worker without a grace period the time to cancel the activity
        # (that is what the assertion below catches); with one, it waits.
        await asyncio.sleep(1.0)
        assert not stopping.done()
    finally:
        await tx.commit()
        await holder.close()
    await asyncio.wait_for(stopping, 30)
    await asyncio.wait_for(running, 30)
    # With the file mailbox the send is a local activity in the workflow task
    # that confirmed: that task completes the workflow once the send is done.
    # (An activity task's result would wait for a worker: then it is ended here.)
    with contextlib.suppress(RPCError):
        await handle.terminate("test over")
    rows = await fetch(db_engine, "SELECT status, send_attempts FROM email_outbox WHERE "
                       "booking_id = CAST(:b AS uuid)", b=booking)
    assert [tuple(r) for r in rows] == [("sent", 1)]
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{booking}-confirmation.eml"]
