"""BookingAssignmentWorkflow's handlers, deadlines and history bound, with the
activities replaced by in-process stand-ins (`@activity.defn(name=...)`), so a
test can hold an activity open and deliver signals and updates exactly when it
wants: two decisions in one workflow task, a cancel during the email send.

Holding a local activity open keeps its workflow task open; the worker then
heartbeats the task at 80% of its timeout (2 s here), and that heartbeat
delivers everything that arrived meanwhile in ONE activation. The tests wait
for the update's acceptance (or refusal), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from seatflow.config import Settings
from seatflow.domain.assignment import Pipeline
from seatflow.domain.messages import (
    AssignRequest,
    AssignResult,
    AttemptRequest,
    AttemptResult,
    BookingOutcome,
    BookingWorkflowInput,
    CancelRequest,
    EmailRequest,
    EmailResult,
    EventRequest,
    PipelineDecision,
    TransitionResult,
)
from seatflow.domain.review import InvalidDecision, parse_cancel
from tests.support import save_history
from tests.workflow_fakes import FakeBookingBase
from worker import WORKFLOWS
from workflows.runner import worker_options


@dataclass(kw_only=True)
class FakeBooking(FakeBookingBase):
    """One booking's truth, as the real activities would keep it in PostgreSQL."""

    booking_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "manual_review"
    version: int = 7
    attempts_used: int = 5
    review_timeout: float | None = None
    # what the stand-ins do
    confirm_ok_for: set[str] = field(default_factory=lambda: {"maria"})
    attempt_outcomes: list[str] = field(default_factory=list)  # busy | failed | confirmed
    # what happened (calls: see FakeBookingBase)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    entered: dict[str, asyncio.Event] = field(default_factory=dict)

    def held(self, name: str) -> asyncio.Event:
        """Make the next call of activity `name` wait until the event is set."""
        self.hold[name] = asyncio.Event()
        self.entered[name] = asyncio.Event()
        return self.hold[name]

    async def _pause(self, name: str) -> None:
        gate = self.hold.get(name)
        if gate is not None and not gate.is_set():
            self.entered[name].set()
            await gate.wait()
            self.hold.pop(name, None)

    def _reason(self) -> str | None:
        return "no valid plan"

    def _decision(self) -> PipelineDecision:
        return PipelineDecision(pipeline=Pipeline.V3, retry_base_seconds=0.01, retry_cap_seconds=0.02,
                                manual_review_timeout_seconds=self.review_timeout)

    @activity.defn(name="run_attempt")
    async def run_attempt(self, req: AttemptRequest) -> AttemptResult:
        await self._called("run_attempt", req)
        outcome = self.attempt_outcomes.pop(0) if self.attempt_outcomes else "failed"
        if outcome == "busy":
            return AttemptResult("busy", self.state, self.version, wait_ms=1.0)
        if outcome == "conflict":  # someone else moved the booking meanwhile
            self.version += 1
            return AttemptResult("conflict", self.state, self.version, reason="version moved")
        if req.expected_version != self.version:
            return AttemptResult("conflict", self.state, self.version, reason="version moved")
        if outcome == "confirmed":
            self.state, self.version = "confirmed", self.version + 3
            return AttemptResult("confirmed", self.state, self.version, tables=("T1",),
                                 strategy="optimal_fit")
        self.attempts_used += 1
        self.state, self.version = req.on_failure, self.version + 2
        return AttemptResult("failed", self.state, self.version, reason="no valid plan")

    @activity.defn(name="assign_tables")
    async def assign_tables(self, req: AssignRequest) -> AssignResult:
        await self._called("assign_tables", req)
        if req.actor == "breaks":  # e.g. a booking row gone: a non-retryable error
            raise ApplicationError("booking vanished", type="BookingNotFound",
                                   non_retryable=True)
        if req.actor not in self.confirm_ok_for or req.expected_version != self.version:
            return AssignResult(False, self.state, self.version, reason="tables taken")
        self.state, self.version = "confirmed", self.version + 2
        return AssignResult(True, self.state, self.version, tables=req.table_ids,
                            strategy="manual")

    @activity.defn(name="cancel_booking")
    async def cancel_booking(self, req: CancelRequest) -> TransitionResult:
        await self._called("cancel_booking", req)
        if self.state not in ("failed", "cancelled"):
            self.state, self.version = "cancelled", self.version + 1
        return TransitionResult(True, self.state, self.version)

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        await self._called("send_confirmation_email", req)
        return EmailResult(sent=self.state == "confirmed")

    @activity.defn(name="record_workflow_event")
    async def record_workflow_event(self, req: EventRequest) -> None:
        await self._called("record_workflow_event", req)

    def _more_activities(self) -> list[Callable[..., Any]]:
        return [self.run_attempt, self.assign_tables, self.cancel_booking,
                self.send_confirmation_email, self.record_workflow_event]


@pytest.fixture
def fake() -> FakeBooking:
    return FakeBooking()


@pytest_asyncio.fixture
async def running(
    dev_env: WorkflowEnvironment, fake: FakeBooking,
) -> AsyncIterator[tuple[Client, str]]:
    queue = f"hard-{uuid.uuid4().hex[:8]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=WORKFLOWS,
                      **worker_options(), activities=fake.activities()):
        try:
            yield dev_env.client, queue
        finally:  # a failed test must not leave an activity held (shutdown waits)
            for gate in fake.hold.values():
                gate.set()
            for name in list(fake.entered):
                fake.hold.setdefault(name, asyncio.Event()).set()


async def start(client: Client, queue: str, fake: FakeBooking,
                **inp: Any) -> WorkflowHandle[Any, BookingOutcome]:
    return await client.start_workflow(
        "BookingAssignmentWorkflow",
        BookingWorkflowInput(booking_id=fake.booking_id, **inp),
        id=f"booking-assignment-{fake.booking_id}", task_queue=queue,
        result_type=BookingOutcome,
        # A held local activity keeps the task open: heartbeat it after 1.6 s.
        task_timeout=timedelta(seconds=2),
    )


async def within(awaitable: Any, timeout: float = 30.0) -> Any:
    """Await with a bound: a wedged workflow never accepts an Update."""
    return await asyncio.wait_for(awaitable, timeout)


async def until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def state_of(handle: WorkflowHandle[Any, Any]) -> str:
    return str((await handle.query("status"))["state"])


async def eventually_state(handle: WorkflowHandle[Any, Any], wanted: str) -> str:
    """The workflow's state once it is `wanted` (its first task may still run)."""
    state = ""
    for _ in range(500):
        state = await state_of(handle)
        if state == wanted:
            break
        await asyncio.sleep(0.02)
    return state


async def in_manual_review(client: Client, queue: str, fake: FakeBooking,
                           **inp: Any) -> WorkflowHandle[Any, BookingOutcome]:
    handle = await start(client, queue, fake, **inp)
    assert await eventually_state(handle, "manual_review") == "manual_review"
    return handle


async def hold_a_refused_assign(handle: WorkflowHandle[Any, Any], fake: FakeBooking) -> asyncio.Event:
    """An operator's assign (refused: tables taken) whose confirm is held open:
    the workflow task stays open until the gate is set."""
    gate = fake.held("assign_tables")
    await handle.signal("resolve_manual_review",
                        {"action": "assign", "table_ids": ["T3"], "actor": "ops"})
    await asyncio.wait_for(fake.entered["assign_tables"].wait(), 30)
    return gate


# ------------------------------------------------- decisions that race

async def test_update_waiting_behind_a_signal_decision_is_refused_with_the_outcome(running, fake: FakeBooking) -> None:
    """A reject signal is being applied (its activity held open) when an
    operator's assign Update arrives: the Update is accepted (the booking is
    still in manual review), waits, then finds the booking failed. It must be
    refused with what happened, and the workflow must complete; a plain
    exception here used to fail the workflow task over and over (wedged)."""
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    gate = fake.held("transition_state")
    await handle.signal("resolve_manual_review",
                        {"action": "reject", "actor": "ops", "reason": "kitchen closed"})
    await asyncio.wait_for(fake.entered["transition_state"].wait(), 30)
    update = await within(handle.start_update(
        "resolve_manual_review_update",
        {"action": "assign", "table_ids": ["T1"], "actor": "maria"},
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    ))
    gate.set()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await asyncio.wait_for(update.result(), 30)
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "update_refused_behind_signal_decision")
    assert outcome.state == "failed"
    assert (f"booking {fake.booking_id} was already resolved: failed (rejected by ops: "
            "kitchen closed)") in str(refused.value.cause)
    assert fake.called("assign_tables") == []  # the assign never ran
    assert [t.to_state for t in fake.called("transition_state")] == ["failed"]


async def test_update_and_signal_in_one_task_apply_exactly_one_decision(running, fake: FakeBooking) -> None:
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    gate = await hold_a_refused_assign(handle, fake)
    # Both arrive while the task is open, so one activation delivers both.
    await handle.signal("resolve_manual_review",
                        {"action": "reject", "actor": "ops", "reason": "kitchen closed"})
    update = await within(handle.start_update(
        "resolve_manual_review_update",
        {"action": "assign", "table_ids": ["T1", "T2"], "actor": "maria"},
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    ))
    gate.set()
    result = await asyncio.wait_for(update.result(), 30)
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "update_and_signal_in_one_task")
    # The Update queued for the lock first and confirmed; the reject that lost
    # is dropped (logged), never applied to the confirmed booking.
    assert result["state"] == "confirmed" and outcome.state == "confirmed"
    assert [c.actor for c in fake.called("assign_tables")] == ["ops", "maria"]
    assert fake.called("transition_state") == []
    assert len(fake.called("send_confirmation_email")) == 1


async def test_update_and_cancel_in_one_task_apply_only_the_cancel(running, fake: FakeBooking) -> None:
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    gate = await hold_a_refused_assign(handle, fake)
    await handle.signal("cancel_booking", {"actor": "guest", "reason": "ill"})
    update = await within(handle.start_update(
        "resolve_manual_review_update",
        {"action": "assign", "table_ids": ["T1", "T2"], "actor": "maria"},
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    ))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await asyncio.wait_for(update.result(), 30)
    gate.set()
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "update_and_cancel_in_one_task")
    assert outcome.state == "cancelled"
    assert "is being cancelled" in str(refused.value.cause)
    assert [c.actor for c in fake.called("assign_tables")] == ["ops"]  # only the held one
    assert [c.actor for c in fake.called("cancel_booking")] == ["guest"]


async def test_a_queued_decision_is_dropped_when_its_round_is_over(running, fake: FakeBooking) -> None:
    """Two operators both press retry: the first starts a new round of
    attempts; the second, queued in the same round, must not start another
    round automatically when the booking comes back to manual review."""
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    gate = await hold_a_refused_assign(handle, fake)
    await handle.signal("resolve_manual_review", {"action": "retry", "actor": "ana"})
    await handle.signal("resolve_manual_review", {"action": "retry", "actor": "ben"})
    made_at = fake.version
    gate.set()
    # ana's retry: one round of (failing) attempts, back in manual review.
    await until(lambda: bool(fake.called("record_workflow_event")))
    dropped = fake.called("record_workflow_event")
    assert [e.event_type for e in dropped] == ["manual_review.decision_dropped"]
    assert dropped[0].context["actor"] == "ben"
    assert dropped[0].context["made_at_version"] == made_at
    assert await state_of(handle) == "manual_review"
    retries = [t for t in fake.called("transition_state") if t.to_state == "assignment_pending"]
    assert [t.actor for t in retries] == ["ana"]
    assert len(fake.called("run_attempt")) == 5  # one round, not two
    await handle.signal("cancel_booking", {"actor": "ops"})
    assert (await asyncio.wait_for(handle.result(), 30)).state == "cancelled"
    await save_history(handle, "stale_decision_dropped")


async def test_an_activity_error_in_a_signal_decision_leaves_the_workflow_running(running, fake: FakeBooking) -> None:
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    await handle.signal("resolve_manual_review",
                        {"action": "assign", "table_ids": ["T1"], "actor": "breaks"})
    await until(lambda: bool(fake.called("assign_tables")))
    assert await state_of(handle) == "manual_review"
    result = await within(handle.execute_update(
        "resolve_manual_review_update",
        {"action": "assign", "table_ids": ["T1"], "actor": "maria"}))
    assert result["state"] == "confirmed"
    outcome = await within(handle.result())
    assert outcome.state == "confirmed"
    assert [c.actor for c in fake.called("assign_tables")] == ["breaks", "maria"]


# ------------------------------------------------------ bad payloads

@pytest.mark.parametrize("payload", [{"actor": 5}, "cancel", {"actor": "x", "why": "y"},
                                     {"reason": ""}, {"actor": "x" * 201}])
def test_parse_cancel_refuses_malformed_payloads(payload: Any) -> None:
    with pytest.raises(InvalidDecision):
        parse_cancel(payload)


def test_parse_cancel_accepts_nothing_or_actor_and_reason() -> None:
    assert parse_cancel(None) == (None, None)
    assert parse_cancel({"actor": " guest ", "reason": "ill"}) == ("guest", "ill")


async def test_malformed_cancel_is_ignored_and_never_reaches_an_activity(running, fake: FakeBooking) -> None:
    client, queue = running
    handle = await in_manual_review(client, queue, fake)
    for bad in ({"actor": 5}, "now", {"actor": "ops", "extra": True}):
        await handle.signal("cancel_booking", bad)
    assert await state_of(handle) == "manual_review"  # answered after the signals
    assert fake.called("cancel_booking") == []
    await handle.signal("cancel_booking", {"actor": "guest", "reason": "ill"})
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "malformed_cancels_then_cancel")
    assert outcome.state == "cancelled"
    assert [(c.actor, c.reason) for c in fake.called("cancel_booking")] == [("guest", "ill")]


# ------------------------------------------------ cancel during email

async def test_cancel_arriving_during_the_email_send_is_applied_after_it(running, fake: FakeBooking) -> None:
    client, queue = running
    fake.state, fake.version, fake.attempts_used = "assignment_pending", 2, 0
    fake.attempt_outcomes = ["confirmed"]
    gate = fake.held("send_confirmation_email")
    handle = await start(client, queue, fake)
    await asyncio.wait_for(fake.entered["send_confirmation_email"].wait(), 30)
    await handle.signal("cancel_booking", {"actor": "guest", "reason": "plans changed"})
    assert await state_of(handle) == "confirmed"  # the signal is in; the send still runs
    gate.set()
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "cancel_during_email_send")
    assert outcome.state == "cancelled"
    assert [c.actor for c in fake.called("cancel_booking")] == ["guest"]


# ------------------------------------------------- unexpected state

async def test_an_unexpected_state_fails_the_run_with_the_reason_instead_of_spinning(running, fake: FakeBooking) -> None:
    client, queue = running
    fake.state = "assigned"
    handle = await start(client, queue, fake)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 30)
    message = str(failed.value.cause)
    assert f"booking {fake.booking_id} is assigned (v7)" in message
    assert "cannot continue" in message


# ------------------------------------------------ manual-review deadline

@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: workflows other tests left
    on the shared one (on queues nobody polls any more) would hold its clock."""
    from tests.conftest import binary, register_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"))
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def test_manual_review_deadline_is_fixed_when_the_round_begins(own_time_skipping_env: WorkflowEnvironment, fake: FakeBooking) -> None:
    """A relative timeout of one hour: a decision refused after 40 minutes
    must not give the booking another full hour."""
    fake.review_timeout = 3600.0
    env = own_time_skipping_env
    queue = f"hard-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=WORKFLOWS,
                      **worker_options(), activities=fake.activities()):
        handle = await start(env.client, queue, fake)
        await until(lambda: bool(fake.called("begin_booking")))
        await env.sleep(timedelta(minutes=40))
        await handle.signal("resolve_manual_review",
                            {"action": "assign", "table_ids": ["T3"], "actor": "ops"})
        await until(lambda: bool(fake.called("assign_tables")))  # refused: tables taken
        await env.sleep(timedelta(minutes=30))
        state = await state_of(handle)
        expired = [t.reason for t in fake.called("transition_state")]
    assert state == "failed"
    assert expired == ["manual_review_expired"]


# ------------------------------------------------------ bounded history

async def test_a_long_manual_review_continues_as_new_and_keeps_its_deadline(running, fake: FakeBooking) -> None:
    client, queue = running
    fake.review_timeout = 3 * 24 * 3600.0
    handle = await in_manual_review(client, queue, fake, history_limit=60)
    first_run = (await handle.describe()).run_id
    sent = 0
    # Refused at once (unknown table): only the history grows, by at least one
    # event per signal, so 60 events are reached within 60 signals.
    while len(fake.called("begin_booking")) < 2 and sent < 200:
        await handle.signal("resolve_manual_review",
                            {"action": "assign", "table_ids": [f"X{sent}"], "actor": "ops"})
        sent += 1
        await asyncio.sleep(0.01)
    await until(lambda: len(fake.called("begin_booking")) >= 2)
    described = await handle.describe()
    assert described.run_id != first_run
    await save_history(client.get_workflow_handle(handle.id, run_id=first_run),
                       "manual_review_continued_as_new")
    history = [e async for e in client.get_workflow_handle(
        handle.id, run_id=first_run).fetch_history_events()]
    assert history[-1].WhichOneof("attributes") == (
        "workflow_execution_continued_as_new_event_attributes")
    carried = history[-1].workflow_execution_continued_as_new_event_attributes
    assert carried.new_execution_run_id  # (signals still queued may continue it again)
    assert len(history) < 120
    # The next run is still in manual review, for the same round, with the
    # deadline the first run fixed (its timer's start + duration).
    timer = next(e for e in history if e.HasField("timer_started_event_attributes"))
    first_deadline = (timer.event_time.ToDatetime(tzinfo=UTC)
                      + timer.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta())
    second = client.get_workflow_handle(handle.id, run_id=carried.new_execution_run_id)
    started = (await second.fetch_history()).events[0]
    fresh = client.get_workflow_handle(handle.id, result_type=BookingOutcome)
    inp = json.loads(started.workflow_execution_started_event_attributes.input.payloads[0].data)
    carried_deadline = datetime.fromisoformat(inp["carried"]["review_deadline"])
    assert abs((carried_deadline - first_deadline).total_seconds()) < 1.0
    assert inp["carried"]["round_start"] == 5
    assert await eventually_state(fresh, "manual_review") == "manual_review"
    await fresh.signal("cancel_booking", {"actor": "ops"})
    outcome = await asyncio.wait_for(fresh.result(), 30)
    assert outcome.state == "cancelled"
    assert len(fake.called("cancel_booking")) == 1


async def test_waiting_for_a_busy_restaurant_continues_as_new_without_using_an_attempt(running, fake: FakeBooking) -> None:
    client, queue = running
    fake.state, fake.version, fake.attempts_used = "assignment_pending", 2, 0
    fake.attempt_outcomes = ["busy"] * 12 + ["confirmed"]
    handle = await start(client, queue, fake, history_limit=40)
    outcome = await asyncio.wait_for(
        client.get_workflow_handle(handle.id, result_type=BookingOutcome).result(), 60)
    assert outcome.state == "confirmed"
    assert len(fake.called("begin_booking")) >= 2  # continued as new at least once
    # every attempt request was the first attempt: busy waits consume none
    assert {a.attempt_no for a in fake.called("run_attempt")} == {1}
    assert len(fake.called("send_confirmation_email")) == 1


# ------------------------------------------- a start that passed meanwhile

async def test_a_booking_started_late_after_its_time_goes_to_manual_review_not_failed(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    """Valid at intake; its workflow starts only after the start passed (the
    intake relay after an outage). Real activities and PostgreSQL."""
    from seatflow.service.bookings import start_booking_workflow
    from tests.support import fetch, floorplan, import_plan, new_booking, scalar, wait_for_state
    from worker import build_worker

    rid = f"r-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2)
    # Made yesterday for a table an hour ago; nothing has run for it since.
    async with db_engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text(
            "UPDATE bookings SET start_at = now() - interval '1 hour', "
            "end_at = now() + interval '30 minutes', occupied_until = now() + interval '35 minutes', "
            "created_at = now() - interval '1 day' WHERE id = CAST(:b AS uuid)"), {"b": booking})
    queue = f"late-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        handle = await start_booking_workflow(
            dev_env.client, booking_id=booking, restaurant_id=rid, party_size=2,
            start=datetime.now(UTC) - timedelta(hours=1), task_queue=queue)
        state = await wait_for_state(db_engine, booking, {"manual_review", "failed"})
        assert await eventually_state(handle, "manual_review") == "manual_review"
        history = await handle.fetch_history()
        await handle.signal("cancel_booking", {"actor": "test"})
        await handle.result()
        await save_history(handle, "start_passed_manual_review")
    assert state == "manual_review"
    rows = await fetch(db_engine, "SELECT to_state, reason FROM booking_assignment_state_history "
                       "WHERE booking_id = CAST(:b AS uuid) AND to_state = 'manual_review'",
                       b=booking)
    assert len(rows) == 1 and "passed before any assignment attempt ran" in rows[0][1]
    assert await scalar(db_engine, "SELECT count(*) FROM booking_assignment_attempts WHERE "
                        "booking_id = CAST(:b AS uuid)", b=booking) == 0
    # Operators get time to decide: the manual-review timer is a day, not 0.
    timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
              for e in history.events if e.HasField("timer_started_event_attributes")]
    assert timers and min(timers) >= timedelta(hours=23)


async def test_a_version_conflict_reloads_and_carries_on_without_using_an_attempt(running, fake: FakeBooking) -> None:
    client, queue = running
    fake.state, fake.version, fake.attempts_used = "assignment_pending", 2, 0
    fake.attempt_outcomes = ["conflict", "confirmed"]
    handle = await start(client, queue, fake)
    outcome = await asyncio.wait_for(handle.result(), 30)
    await save_history(handle, "version_conflict_reload")
    assert outcome.state == "confirmed"
    assert len(fake.called("begin_booking")) == 2  # the start, and the reload
    attempts = fake.called("run_attempt")
    assert [(a.attempt_no, a.expected_version) for a in attempts] == [(1, 2), (1, 3)]
