"""The booking workflow's state machine, branch by branch, on the time-skipping
test server with stand-in activities (no PostgreSQL).

Each stand-in is registered under the real activity's name
(`@activity.defn(name="run_attempt")`, ...), so the unchanged
`BookingAssignmentWorkflow` calls it; the ones shared with
test_workflow_hardening.py are in tests/workflow_fakes.py. `FakeBooking` answers like the database
would for one booking: it keeps the state and version, refuses a step that
names a stale version, and applies the state the workflow decided for a failed
attempt. Scripts say what each attempt finds (confirmed, failed, busy,
conflict) and which flags are in force; every request is kept, so a test
asserts what the workflow asked for, in which order, with which policy.

The database side of each step is tested against real PostgreSQL in
test_attempt.py, test_policy.py and test_workflow.py; these tests pin the
policy the workflow owns.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from seatflow.domain.assignment import Pipeline
from seatflow.domain.messages import (
    AssignRequest,
    AssignResult,
    AttemptRequest,
    AttemptResult,
    BookingOutcome,
    BookingStatus,
    CancelRequest,
    EmailRequest,
    EmailResult,
    LegacySummaryRequest,
    ManualReviewResult,
    PipelineDecision,
    TransitionResult,
)
from seatflow.domain.planning import Plan
from seatflow.domain.states import AssignmentState, can_transition
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.service.bookings import start_booking_workflow
from tests.support import save_history
from tests.workflow_fakes import FakeBookingBase
from workflows.booking import BookingAssignmentWorkflow
from workflows.runner import worker_options, workflow_runner

S = AssignmentState
PENDING = S.ASSIGNMENT_PENDING.value
MANUAL_REVIEW = S.MANUAL_REVIEW.value
# The round's length in these tests (SEATFLOW_MAX_ATTEMPTS), and a backoff
# base long enough that a test can act while the workflow sleeps.
ROUND = 5


def v3(**changes: Any) -> PipelineDecision:
    """The flags in force: the V3 pipeline with a round of five attempts and
    backoffs of 1, 2, 4, 8 s (jittered down by up to 20%)."""
    base = PipelineDecision(pipeline=Pipeline.V3, max_attempts=ROUND, retry_base_seconds=1.0,
                            retry_cap_seconds=30.0)
    return replace(base, **changes)


@dataclass(kw_only=True)
class FakeBooking(FakeBookingBase):
    """One booking as the stand-in activities see it, plus the script."""

    # What each run_attempt finds, in order: confirmed | failed | busy | conflict.
    attempts: list[str] = field(default_factory=list)
    # The flags: begin_booking answers the first, decide_pipeline the next ones
    # (the last repeats).
    decisions: list[PipelineDecision] = field(default_factory=lambda: [v3()])
    # What each legacy attempt's first fit finds, in order (no plan when the
    # list runs out).
    legacy_plans: list[tuple[Plan, ...]] = field(default_factory=list)
    # Tables an operator's assign finds taken.
    taken: frozenset[str] = frozenset()
    state: str = PENDING
    version: int = 2  # created -> capacity_verified -> assignment_pending
    invalid_reason: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # the server's clock
    # What happens at a conflict: another writer moved the booking (one version
    # up), optionally to another state.
    conflict_moves_to: str | None = None

    stale_transition_reason: ClassVar[str | None] = "stale version"

    # ----------------------------------------------------------- helpers

    def _reason(self) -> str | None:
        return self.invalid_reason

    def _begin(self) -> None:
        if self.invalid_reason:
            self._move(S.FAILED.value)

    def _move(self, to_state: str) -> None:
        """A state change as storage makes it; an illegal one fails the workflow
        (non-retryable, as IllegalTransition is), so the test sees it."""
        if not can_transition(S(self.state), S(to_state)):
            raise ApplicationError(f"cannot move from {self.state} to {to_state}",
                                   type="IllegalTransition", non_retryable=True)
        super()._move(to_state)

    def _decision(self) -> PipelineDecision:
        nth = len(self.called("decide_pipeline")) + len(self.called("begin_booking")) - 1
        return self.decisions[min(nth, len(self.decisions) - 1)]

    # ------------------------------- the activities this script owns, by name

    @activity.defn(name="run_attempt")
    async def run_attempt(self, req: AttemptRequest) -> AttemptResult:
        await self._called("run_attempt", req)
        plans: tuple[Plan, ...] = ()
        if req.pipeline == Pipeline.LEGACY:
            plans = self.legacy_plans.pop(0) if self.legacy_plans else ()
            outcome = "confirmed" if plans else "failed"
        else:
            outcome = self.attempts.pop(0) if self.attempts else "failed"
        if outcome == "busy":
            return AttemptResult(outcome="busy", state=self.state, version=self.version,
                                 wait_ms=req.waited_ms + 500.0)
        if outcome == "conflict" or req.expected_version != self.version:
            if outcome == "conflict":  # another writer got there first
                self.version += 1
                if self.conflict_moves_to:
                    self.state = self.conflict_moves_to
            return AttemptResult(outcome="conflict", state=self.state, version=self.version,
                                 reason=f"version {req.expected_version} is stale")
        self._move(S.ASSIGNMENT_IN_PROGRESS.value)
        if outcome == "confirmed":
            self._move(S.ASSIGNED.value)
            self._move(S.CONFIRMED.value)
            tables, strategy = (plans[0].tables, plans[0].strategy) if plans else (("T1",),
                                                                                  "single")
            return AttemptResult(outcome="confirmed", state=self.state, version=self.version,
                                 tables=tables, strategy=strategy, wait_ms=1.0,
                                 as_of="2026-01-01T00:00:00+00:00")
        # A failed attempt moves where the workflow said, as storage does.
        self._move(req.on_failure)
        reason = "no tables" if req.pipeline == Pipeline.LEGACY else (
            f"no plan at attempt {req.attempt_no}")
        return AttemptResult(outcome="failed", state=self.state, version=self.version,
                             reason=reason, wait_ms=1.0, as_of="2026-01-01T00:00:00+00:00")

    @activity.defn(name="assign_tables")
    async def assign_tables(self, req: AssignRequest) -> AssignResult:
        await self._called("assign_tables", req)
        if set(req.table_ids) & self.taken:
            return AssignResult(confirmed=False, state=self.state, version=self.version,
                                reason=f"table(s) {', '.join(req.table_ids)} taken")
        self._move(S.ASSIGNED.value)
        self._move(S.CONFIRMED.value)
        return AssignResult(confirmed=True, state=self.state, version=self.version,
                            tables=tuple(sorted(req.table_ids)), strategy="manual")

    @activity.defn(name="record_legacy_summary")
    async def record_legacy_summary(self, req: LegacySummaryRequest) -> None:
        await self._called("record_legacy_summary", req)

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        await self._called("send_confirmation_email", req)
        return EmailResult(sent=True, path=f"{req.booking_id}-{req.kind}.eml")

    @activity.defn(name="cancel_booking")
    async def cancel_booking(self, req: CancelRequest) -> TransitionResult:
        await self._called("cancel_booking", req)
        self._move(S.CANCELLED.value)
        return TransitionResult(ok=True, state=self.state, version=self.version)

    def _more_activities(self) -> list[Callable[..., Any]]:
        return [self.run_attempt, self.assign_tables, self.record_legacy_summary,
                self.send_confirmation_email, self.cancel_booking]


# ----------------------------------------------------------------- harness


@pytest_asyncio.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """This module's own time-skipping server. On the session's shared one,
    workflows that earlier tests left waiting (manual review deadlines,
    continue-as-new, workers gone) made its clock jump or stall, and a test here
    waited forever for a result in the full suite; these tests assert on timers,
    so they get a server with no history."""
    from tests.conftest import binary, register_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"))
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def booking(time_skipping_env: WorkflowEnvironment) -> FakeBooking:
    """A booking two days ahead of the test server's clock. That clock, not the
    real one, is what the workflow sees: the server runs ahead of real time
    after it has skipped (to any pending timer, including a finished
    workflow's stale ones, while a test waits for a result)."""
    now = await time_skipping_env.get_current_time()
    return FakeBooking(booking_id=str(uuid.uuid4()), now=now, start=now + timedelta(days=2))


@pytest.fixture
async def worker(ts_client: Client, queue: str, booking: FakeBooking) -> AsyncIterator[Worker]:
    """The real workflow, the stand-in activities, one queue of this test's own."""
    async with Worker(ts_client, task_queue=queue, workflows=[BookingAssignmentWorkflow],
                      activities=booking.activities(),
                      **worker_options()) as running:
        yield running


Handle = WorkflowHandle[BookingAssignmentWorkflow, BookingOutcome]


async def start(client: Client, queue: str, booking: FakeBooking) -> Handle:
    """Start the booking's workflow the way intake does. The handle is the
    time-skipping client's (its `result()` lets time skip), typed for the
    workflow so that updates and queries are checked."""
    handle = await start_booking_workflow(
        client, booking_id=booking.booking_id, restaurant_id="r-fake", party_size=4,
        start=booking.start, task_queue=queue)
    return cast(Handle, handle)


async def result(handle: Handle) -> BookingOutcome:
    """The outcome (time skips while waiting for it)."""
    outcome = await handle.result()
    assert isinstance(outcome, BookingOutcome)
    return outcome


async def status_when(handle: Handle, ready: Callable[[BookingStatus], bool],
                      timeout: float = 60.0) -> BookingStatus:
    """Query the workflow until its own view of the booking satisfies `ready`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    status = await handle.query(BookingAssignmentWorkflow.status)
    while not ready(status):
        assert loop.time() < deadline, f"workflow never got there; last status {status}"
        await asyncio.sleep(0.05)
        status = await handle.query(BookingAssignmentWorkflow.status)
    return status


async def in_manual_review(handle: Handle) -> BookingStatus:
    return await status_when(handle, lambda s: s.state == MANUAL_REVIEW)


async def resolve(handle: Handle, payload: dict[str, Any]) -> ManualReviewResult:
    """An operator's decision by update (by name: the SDK types an async
    update method's result as its coroutine)."""
    resolved = await handle.execute_update("resolve_manual_review_update", payload,
                                           result_type=ManualReviewResult)
    assert isinstance(resolved, ManualReviewResult)
    return resolved


async def timers(handle: Handle) -> list[float]:
    """The durations of the durable timers the workflow started, in order."""
    history = await handle.fetch_history()
    return [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
            for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]


async def replays(handle: Handle) -> None:
    """The recorded history replays against the workflow code (determinism)."""
    history: WorkflowHistory = await handle.fetch_history()
    await Replayer(workflows=[BookingAssignmentWorkflow],
                   workflow_runner=workflow_runner()).replay_workflow(history)


# ------------------------------------------------------------------- tests


async def test_happy_path_confirms_on_the_first_attempt_and_sends_one_email(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.attempts = ["confirmed"]
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.attempts, outcome.tables, outcome.pipeline) == (
        "confirmed", 1, ("T1",), "v3")
    assert booking.names() == ["begin_booking", "run_attempt", "send_confirmation_email"]
    (attempt,) = booking.called("run_attempt")
    assert (attempt.attempt_no, attempt.expected_version, attempt.on_failure) == (1, 2, PENDING)
    assert await timers(handle) == []
    await replays(handle)


async def test_failed_attempts_back_off_growing_then_the_last_of_the_round_goes_to_manual_review(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(retry_base_seconds=0.25)]
    booking.attempts = ["failed"] * ROUND
    handle = await start(ts_client, queue, booking)
    status = await in_manual_review(handle)
    requests = booking.called("run_attempt")
    # The workflow decided each failure's next state before the attempt ran.
    assert [r.attempt_no for r in requests] == [1, 2, 3, 4, 5]
    assert [r.on_failure for r in requests] == [PENDING] * 4 + [MANUAL_REVIEW]
    # Each attempt named the version the previous one left.
    assert [r.expected_version for r in requests] == [2, 4, 6, 8, 10]
    assert (status.attempts, status.last_reason) == (5, "no plan at attempt 5")
    # A backoff after each failed attempt but the last: 0.25, 0.5, 1, 2 s, each
    # shortened by at most 20% of jitter.
    backoffs = [t for t in await timers(handle) if t < 3600]
    assert len(backoffs) == 4
    for n, delay in enumerate(backoffs, start=1):
        assert 0.8 * 0.25 * 2 ** (n - 1) <= delay <= 0.25 * 2 ** (n - 1)
    # The flags are read again before every attempt but the first.
    assert len(booking.called("decide_pipeline")) == 4
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "test"})
    assert (await result(handle)).state == "cancelled"
    await save_history(handle, "five_failed_attempts_to_manual_review")


async def test_a_busy_restaurant_waits_on_a_durable_timer_and_retries_without_using_an_attempt(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.attempts = ["busy", "busy", "confirmed"]
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.attempts) == ("confirmed", 1)
    requests = booking.called("run_attempt")
    assert [r.attempt_no for r in requests] == [1, 1, 1]
    assert [r.expected_version for r in requests] == [2, 2, 2]
    # The wait already spent travels with the retry (for the slot-wait figures).
    assert requests[0].waited_ms == 0.0
    assert requests[1].waited_ms > 500.0 and requests[2].waited_ms > requests[1].waited_ms
    # Between busy tries: one durable timer each, 0.25 to 0.5 s (jittered).
    waits = await timers(handle)
    assert len(waits) == 2 and all(0.25 <= w <= 0.5 for w in waits)
    assert "decide_pipeline" not in booking.names()  # a busy try is not a new attempt
    await replays(handle)
    await save_history(handle, "busy_restaurant_then_confirmed")


async def test_a_version_conflict_reloads_and_retries_the_same_attempt_with_the_new_version(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.attempts = ["conflict", "confirmed"]
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.attempts) == ("confirmed", 1)
    # The reload is begin_booking again (it reads the flags too).
    assert booking.names() == ["begin_booking", "run_attempt", "begin_booking",
                               "run_attempt", "send_confirmation_email"]
    first, second = booking.called("run_attempt")
    assert (first.attempt_no, first.expected_version) == (1, 2)
    # The reload's version (another writer moved it to 3) is the one named next.
    assert (second.attempt_no, second.expected_version) == (1, 3)
    assert await timers(handle) == []  # a lost race is no failed attempt: no backoff


async def test_a_conflict_whose_reload_finds_the_booking_cancelled_stops_without_another_attempt(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.attempts = ["conflict"]
    booking.conflict_moves_to = "cancelled"
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.attempts) == ("cancelled", 0)
    assert booking.names() == ["begin_booking", "run_attempt", "begin_booking"]


async def test_manual_review_assign_by_update_confirms_and_a_bad_assign_is_refused_first(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=1)]
    booking.attempts = ["failed"]
    booking.taken = frozenset({"T3"})
    handle = await start(ts_client, queue, booking)
    await in_manual_review(handle)
    # Rejected by the validator: nothing reaches an activity or the history.
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await resolve(handle, {"action": "assign", "table_ids": ["T9"], "actor": "maria"})
    with pytest.raises(WorkflowUpdateFailedError) as malformed:
        await resolve(handle, {"action": "seat", "actor": "maria"})
    assert "T9" in str(unknown.value.cause)
    assert "action must be one of" in str(malformed.value.cause)
    assert "assign_tables" not in booking.names()
    # Valid, but the table is taken: the confirm refuses, the booking stays.
    with pytest.raises(WorkflowUpdateFailedError) as taken:
        await resolve(handle, {"action": "assign", "table_ids": ["T3"], "actor": "maria"})
    assert "taken" in str(taken.value.cause)
    assert (await handle.query(BookingAssignmentWorkflow.status)).state == MANUAL_REVIEW
    done = await resolve(handle, {"action": "assign", "table_ids": ["T2", "T1"], "actor": "maria",
                                  "note": "by the window"})
    assert (done.state, done.tables, done.action) == ("confirmed", ("T1", "T2"), "assign")
    outcome = await result(handle)
    assert (outcome.state, outcome.strategy, outcome.attempts) == ("confirmed", "manual", 2)
    confirm = booking.called("assign_tables")[-1]
    assert (confirm.actor, confirm.note, confirm.table_ids, confirm.force) == (
        "maria", "by the window", ("T2", "T1"), False)
    assert len(booking.called("send_confirmation_email")) == 1
    await replays(handle)


async def test_manual_review_retry_by_update_starts_a_new_round(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=2)]
    booking.attempts = ["failed", "failed", "failed", "confirmed"]
    handle = await start(ts_client, queue, booking)
    await in_manual_review(handle)
    retried = await resolve(handle, {"action": "retry", "actor": "ops"})
    assert retried.state == PENDING
    outcome = await result(handle)
    assert (outcome.state, outcome.attempts) == ("confirmed", 4)
    requests = booking.called("run_attempt")
    # Round one: attempts 1-2, the 2nd to manual review; the operator's retry
    # gives a fresh round of two: attempts 3-4, manual review only after the 4th.
    assert [(r.attempt_no, r.on_failure) for r in requests] == [
        (1, PENDING), (2, MANUAL_REVIEW), (3, PENDING), (4, MANUAL_REVIEW)]
    (retry,) = booking.called("transition_state")
    assert (retry.to_state, retry.actor, retry.reason) == (
        PENDING, "ops", "retry requested by ops")
    # The new round's backoff starts from the base again (~1 s, not ~2 s).
    backoffs = [t for t in await timers(handle) if t < 3600]
    assert len(backoffs) == 2 and all(0.8 <= b <= 1.0 for b in backoffs)
    await save_history(handle, "retries_then_review_retry_then_confirmed")


async def test_manual_review_reject_by_update_fails_the_booking_with_the_reason(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=1)]
    handle = await start(ts_client, queue, booking)
    await in_manual_review(handle)
    await resolve(handle, {"action": "reject", "actor": "ops", "reason": "kitchen closed"})
    outcome = await result(handle)
    assert (outcome.state, outcome.reason) == ("failed", "rejected by ops: kitchen closed")
    (reject,) = booking.called("transition_state")
    assert (reject.to_state, reject.actor) == ("failed", "ops")
    assert "send_confirmation_email" not in booking.names()


async def test_manual_review_by_signal_ignores_bad_payloads_and_applies_a_good_one(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=1)]
    handle = await start(ts_client, queue, booking)
    await in_manual_review(handle)
    for bad in ("not an object", {"action": "assign", "actor": "ops"},
                {"action": "assign", "table_ids": ["T9"], "actor": "ops"},
                {"action": "retry", "actor": "ops", "extra": 1}):
        await handle.signal(BookingAssignmentWorkflow.resolve_manual_review, bad)
    await handle.signal(BookingAssignmentWorkflow.resolve_manual_review,
                        {"action": "assign", "table_ids": ["T3"], "actor": "ops"})
    outcome = await result(handle)
    assert (outcome.state, outcome.tables) == ("confirmed", ("T3",))
    # The four bad signals reached no activity: one confirm, the good one.
    assert [c.table_ids for c in booking.called("assign_tables")] == [("T3",)]
    await replays(handle)


async def test_manual_review_expires_at_the_bookings_start(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=1)]
    booking.start = booking.now + timedelta(hours=3)
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)  # time skips to the booking's start
    assert (outcome.state, outcome.reason) == ("failed", "manual_review_expired")
    (expire,) = booking.called("transition_state")
    assert expire.to_state == "failed"
    (review_wait,) = [t for t in await timers(handle) if t > 60]
    assert 2.9 * 3600 <= review_wait <= 3 * 3600


async def test_cancel_while_pending_wakes_the_backoff_and_cancels_without_another_attempt(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    # An hour's backoff: the workflow is certainly asleep in assignment_pending.
    booking.decisions = [v3(retry_base_seconds=3600.0, retry_cap_seconds=3600.0)]
    handle = await start(ts_client, queue, booking)
    await status_when(handle, lambda s: s.state == PENDING and s.attempts == 1)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking,
                        {"actor": "guest", "reason": "plans changed"})
    outcome = await result(handle)
    assert (outcome.state, outcome.reason, outcome.attempts) == ("cancelled", "plans changed", 1)
    assert len(booking.called("run_attempt")) == 1
    (cancel,) = booking.called("cancel_booking")
    assert (cancel.actor, cancel.reason, cancel.expected_version) == ("guest", "plans changed", 4)
    await save_history(handle, "cancel_during_backoff")


async def test_cancel_in_manual_review_cancels(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(max_attempts=1)]
    handle = await start(ts_client, queue, booking)
    await in_manual_review(handle)
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "guest"})
    outcome = await result(handle)
    assert (outcome.state, outcome.tables) == ("cancelled", ())
    assert booking.state == "cancelled"
    assert len(booking.called("cancel_booking")) == 1
    await replays(handle)


async def test_an_invalid_booking_fails_at_once_without_attempts(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.invalid_reason = "party size must be at least 1"
    booking.state, booking.version = "created", 0
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.reason, outcome.attempts) == (
        "failed", "party size must be at least 1", 0)
    assert booking.names() == ["begin_booking"]


async def test_a_booking_confirmed_before_the_workflow_ran_only_sends_its_email(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.state, booking.version = "confirmed", 5
    outcome = await result(await start(ts_client, queue, booking))
    assert (outcome.state, outcome.reason) == ("confirmed", "terminal_state")
    assert booking.names() == ["begin_booking", "send_confirmation_email"]


async def test_the_legacy_pipeline_retries_with_its_fixed_delays_and_confirms_by_first_fit(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(pipeline="legacy", legacy_delays_seconds=(5.0, 15.0))]
    booking.legacy_plans = [(), (Plan(tables=("T2",), score=0.0, strategy="legacy"),)]
    handle = await start(ts_client, queue, booking)
    outcome = await result(handle)
    assert (outcome.state, outcome.pipeline, outcome.tables, outcome.attempts) == (
        "confirmed", "legacy", ("T2",), 2)
    assert booking.names() == [
        "begin_booking",
        "run_attempt",  # try 1: nothing free
        "decide_pipeline",
        "run_attempt",  # try 2: first fit
        "record_legacy_summary", "send_confirmation_email",
    ]
    failed, seated = booking.called("run_attempt")
    # Neither is the last try of three: a failure would go back to pending.
    assert (failed.attempt_no, failed.on_failure, failed.pipeline) == (1, PENDING, "legacy")
    assert (seated.attempt_no, seated.on_failure, seated.pipeline) == (2, PENDING, "legacy")
    (summary,) = booking.called("record_legacy_summary")
    assert (summary.outcome, summary.tries, summary.tables) == ("seated", 2, ("T2",))
    assert await timers(handle) == [5.0]  # the first fixed delay, no jitter
    await replays(handle)


async def test_the_legacy_pipelines_last_try_goes_to_manual_review_and_starts_the_shadow(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    shadow_queue = f"{queue}-shadow"  # no worker: the child only has to be started
    booking.decisions = [v3(pipeline="legacy", legacy_delays_seconds=(1.0,), shadow=True,
                            shadow_task_queue=shadow_queue)]
    handle = await start(ts_client, queue, booking)
    status = await in_manual_review(handle)
    assert (status.pipeline, status.attempts) == ("legacy", 2)
    first, last = booking.called("run_attempt")
    assert (first.attempt_no, first.on_failure) == (1, PENDING)
    assert (last.attempt_no, last.on_failure) == (2, MANUAL_REVIEW)  # the final try
    (summary,) = booking.called("record_legacy_summary")
    assert (summary.outcome, summary.tries, summary.reason) == ("not_seated", 2, "no tables")
    shadow = ts_client.get_workflow_handle(f"shadow-{booking.booking_id}")
    described = await shadow.describe()
    assert described.workflow_type == "ShadowAssignmentWorkflow"
    assert described.task_queue == shadow_queue
    await handle.signal(BookingAssignmentWorkflow.cancel_booking, {"actor": "test"})
    assert (await result(handle)).state == "cancelled"
    await shadow.terminate("test done")
    assert (await shadow.describe()).status == WorkflowExecutionStatus.TERMINATED


async def test_the_kill_switch_moves_a_booking_in_flight_to_the_legacy_pipeline(
        ts_client: Client, queue: str, booking: FakeBooking, worker: Worker) -> None:
    booking.decisions = [v3(), v3(pipeline="legacy", legacy_delays_seconds=(1.0,))]
    booking.attempts = ["failed"]
    booking.legacy_plans = [(Plan(tables=("T1",), score=0.0, strategy="legacy"),)]
    outcome = await result(await start(ts_client, queue, booking))
    assert (outcome.state, outcome.pipeline, outcome.attempts) == ("confirmed", "legacy", 2)
    engine_try, legacy_try = booking.called("run_attempt")
    assert (engine_try.pipeline, legacy_try.pipeline) == ("v3", "legacy")
    assert legacy_try.attempt_no == 2  # the legacy try continues the count
    await save_history(ts_client.get_workflow_handle(booking_workflow_id(booking.booking_id)),
                       "kill_switch_to_legacy")
