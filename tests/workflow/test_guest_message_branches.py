"""The booking workflow's guest messages, branch by branch, on the time-skipping
test server with the stand-in activities of test_workflow_branches.py: the
cancellation message a cancel sends (patch `cancellation-message`), the moved
guests still told when the booking is cancelled before its emails, the moved
guests told after an attempt retried after its commit, and the mail retry
policy the workflow schedules. The histories recorded here are the patched
path's (tests/pure/test_replay.py replays them next to the v1 ones)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from seatflow.domain.messages import (
    AttemptRequest,
    AttemptResult,
    BookingWorkflowInput,
    EmailRequest,
    EmailResult,
)
from seatflow.domain.workflow_ids import booking_workflow_id
from tests.support import save_history
from tests.workflow.test_workflow_branches import (
    FakeBooking,
    booking,
    replays,
    result,
    start,
    status_when,
    time_skipping_env,
    v3,
)
from workflows.booking import BookingAssignmentWorkflow, GuestEmailWorkflow
from workflows.runner import worker_options

__all__ = ["booking", "time_skipping_env"]  # fixtures shared with test_workflow_branches

MOVED = "0b9c3f1e-0000-4000-8000-00000000a001"  # a guest re-packing moved


@dataclass(kw_only=True)
class HeldBooking(FakeBooking):
    """A FakeBooking whose calls can be held open (a test signals meanwhile),
    whose confirm moves a guest, and whose first attempt can die after its
    commit (the retry then finds its own work done, as storage reports it)."""

    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    reached: dict[str, asyncio.Event] = field(default_factory=dict)
    die_after_commit: bool = False

    def holding(self, call: str) -> None:
        self.hold[call] = asyncio.Event()
        self.reached[call] = asyncio.Event()

    async def _pause(self, name: str) -> None:
        key = name
        if name == "send_confirmation_email":
            key = f"email:{self.calls[-1][1].kind}"
        if key in self.hold:
            self.reached[key].set()
            await self.hold[key].wait()

    @activity.defn(name="run_attempt")
    async def run_attempt(self, req: AttemptRequest) -> AttemptResult:
        if self.die_after_commit and self.state == "confirmed":
            # The retry of an attempt that committed: storage finds it done and
            # reports it whole, moved guests included.
            await self._called("run_attempt", req)
            return AttemptResult(outcome="confirmed", state=self.state, version=self.version,
                                 tables=("T1",), strategy="repack", notify=(MOVED,))
        done = await super().run_attempt(req)
        if self.die_after_commit:
            raise RuntimeError("worker lost after the commit")
        return AttemptResult(outcome=done.outcome, state=done.state, version=done.version,
                             tables=done.tables, strategy=done.strategy, notify=(MOVED,))

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        await self._called("send_confirmation_email", req)
        return EmailResult(sent=True, path=f"{req.booking_id}-{req.kind}.eml")

    def _more_activities(self) -> list[Callable[..., Any]]:
        return [self.run_attempt, self.assign_tables, self.record_legacy_summary,
                self.send_confirmation_email, self.cancel_booking]

    def emails(self) -> list[tuple[str, str]]:
        return [(r.booking_id, r.kind) for r in self.called("send_confirmation_email")]


@pytest_asyncio.fixture
async def held(booking: FakeBooking) -> HeldBooking:
    return HeldBooking(booking_id=booking.booking_id, now=booking.now, start=booking.start,
                       attempts=["confirmed"])


@pytest_asyncio.fixture
async def worker(ts_client: Client, queue: str, held: HeldBooking) -> AsyncIterator[Worker]:
    async with Worker(ts_client, task_queue=queue,
                      workflows=[BookingAssignmentWorkflow, GuestEmailWorkflow],
                      activities=held.activities(), **worker_options()) as running:
        yield running


async def test_a_cancel_during_the_confirmation_send_sends_the_cancellation_after_it(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    held.holding("email:confirmation")
    handle = await start(ts_client, queue, held)
    await asyncio.wait_for(held.reached["email:confirmation"].wait(), 30)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "guest"})
    held.hold["email:confirmation"].set()
    outcome = await result(handle)
    assert outcome.state == "cancelled"
    assert held.names() == ["begin_booking", "run_attempt", "send_confirmation_email",
                            "send_confirmation_email", "cancel_booking",
                            "send_confirmation_email"]
    # the confirmation in flight, the moved guest, then the cancellation
    assert held.emails() == [(held.booking_id, "confirmation"), (MOVED, "table_changed"),
                             (held.booking_id, "cancellation")]
    await save_history(handle, "cancel_during_email_send_sends_cancellation")
    await replays(handle)


async def test_a_cancel_during_a_local_confirmation_send_sends_the_cancellation_after_it(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    """Patch "email-local-activity": with a local mail transport the messages
    are local activities, and no activity task is scheduled. A cancel
    signalled while one runs is applied after it, as with the regular
    activity. The signal lands while the task that sends is still running,
    so the server refuses that task's completion (it would have completed the
    workflow past an unseen signal) and the task runs again: its local
    activities find their work done (the real send finds the outbox row sent)."""
    held.decisions = [v3(email_local=True)]
    held.holding("email:confirmation")
    handle = await start(ts_client, queue, held)
    await asyncio.wait_for(held.reached["email:confirmation"].wait(), 30)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "guest"})
    held.hold["email:confirmation"].set()
    outcome = await result(handle)
    assert outcome.state == "cancelled"
    assert held.names().count("cancel_booking") == 1
    assert held.names().count("run_attempt") == 1
    # every message, in order of first send: the moved guest is told once, and
    # the cancellation comes last
    assert list(dict.fromkeys(held.emails())) == [
        (held.booking_id, "confirmation"), (MOVED, "table_changed"),
        (held.booking_id, "cancellation")]
    assert held.emails().count((MOVED, "table_changed")) == 1
    assert held.emails()[-1] == (held.booking_id, "cancellation")
    events = [e.event_type for e in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events
    await save_history(handle, "cancel_during_local_email_send")
    await replays(handle)


async def test_a_cancel_before_the_emails_still_tells_the_moved_guest_and_sends_the_cancellation(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    held.holding("run_attempt")
    # A short workflow task timeout: the worker heartbeats the task while the
    # local attempt runs (at 80% of it), so the cancel signal reaches the
    # workflow before the attempt's result does, as after a slow attempt.
    handle = await ts_client.start_workflow(
        BookingAssignmentWorkflow.run, BookingWorkflowInput(booking_id=held.booking_id),
        id=booking_workflow_id(held.booking_id), task_queue=queue,
        task_timeout=timedelta(seconds=1))
    await asyncio.wait_for(held.reached["run_attempt"].wait(), 30)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "ops"})
    await asyncio.sleep(2.5)  # two task heartbeats: the signal is in the workflow
    held.hold["run_attempt"].set()
    outcome = await result(handle)
    assert outcome.state == "cancelled"
    # No confirmation for a booking cancelled before it was sent; the guest
    # re-packing moved to seat it is told (the move stands), and the guest
    # gets the cancellation (storage queued it: the booking had been confirmed).
    assert held.emails() == [(MOVED, "table_changed"), (held.booking_id, "cancellation")]
    assert held.names()[-3:] == ["cancel_booking", "send_confirmation_email",
                                 "send_confirmation_email"]
    await save_history(handle, "cancel_after_confirm_tells_moved_guest_and_cancels")
    await replays(handle)


async def test_a_cancel_while_pending_asks_for_the_cancellation_message(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    """The workflow cannot know whether the guest had been confirmed: it asks,
    and the outbox sends one only when the cancel queued one."""
    held.attempts = []
    held.decisions = [v3(retry_base_seconds=3600.0, retry_cap_seconds=3600.0)]
    handle = await start(ts_client, queue, held)
    await status_when(handle, lambda s: s.attempts == 1)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "guest"})
    outcome = await result(handle)
    assert outcome.state == "cancelled"
    assert held.emails() == [(held.booking_id, "cancellation")]
    await save_history(handle, "cancel_while_pending_asks_for_cancellation")


async def test_an_attempt_retried_after_its_commit_tells_the_guest_it_moved(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    held.die_after_commit = True
    handle = await start(ts_client, queue, held)
    outcome = await result(handle)
    assert outcome.state == "confirmed"
    assert len(held.called("run_attempt")) == 2
    assert held.emails() == [(held.booking_id, "confirmation"), (MOVED, "table_changed")]
    await save_history(handle, "retry_after_commit_tells_moved_guest")


async def test_mail_is_scheduled_on_its_own_retry_policy_not_the_database_one(
        ts_client: Client, queue: str, held: HeldBooking, worker: Worker) -> None:
    handle = await start(ts_client, queue, held)
    await result(handle)
    history = await handle.fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert [s.activity_type.name for s in scheduled] == ["send_confirmation_email"] * 2
    for s in scheduled:
        policy = s.retry_policy
        assert policy.initial_interval.ToTimedelta().total_seconds() == 1.0
        assert policy.backoff_coefficient == 2.0
        assert policy.maximum_interval.ToTimedelta().total_seconds() == 120.0
        assert policy.maximum_attempts == 0  # unlimited: the activity bounds deliveries
    # 1 s doubling to 2 min: the 20 deliveries of SEATFLOW_MAIL_MAX_ATTEMPTS span
    # about half an hour of backoff (the runbook's figure).
    waits = [min(2.0 ** n, 120.0) for n in range(19)]
    assert 25 * 60 <= sum(waits) <= 30 * 60
