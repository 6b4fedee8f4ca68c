"""What every part of the booking workflow shares: the booking's state, the
calls of its activities, and how the workflow shows itself in the Temporal UI.

The workflow is split by concern: `workflow.py` (the run loop, automatic
attempts, the legacy path), `review.py` (manual review: update, signal,
deadline), `cancel.py` (the cancel signal). Each part is a class deriving
from `WorkflowCore`; `BookingAssignmentWorkflow` combines them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.booking import BookingActivities
    from activities.flags import FlagActivities
    from seatflow import metrics
    from seatflow.domain import search_attributes as sa
    from seatflow.domain.messages import (
        BeginResult,
        BookingOutcome,
        BookingState,
        BookingWorkflowInput,
        DecisionRequest,
        EmailRequest,
        EmailResult,
        ManualReviewDecision,
        PipelineDecision,
        TransitionRequest,
        TransitionResult,
        VerifyRequest,
    )
    from seatflow.domain.states import AssignmentState

# Infrastructure errors (database down, timeouts) retry here, forever, and
# never consume an assignment attempt; business errors are return values.
INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=["BookingNotFound", "IllegalTransition"],
)
# Guest messages retry on their own policy: 1 s doubling to 2 min, about half
# an hour across the activity's own bound (SEATFLOW_MAIL_MAX_ATTEMPTS failed
# deliveries, default 20, then `email.failed`); the attempts are unlimited here
# so a database outage while recording is still retried.
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=["BookingNotFound", "IllegalTransition"],
)
# Short database steps run as local activities: in the worker that runs the
# workflow, with no task-queue round trip per step. Sending email stays a
# regular activity: it talks to an outside system.
ACTIVITY_TIMEOUT = timedelta(seconds=10)
EMAIL_TIMEOUT = timedelta(seconds=30)
# Continue-as-new at this many history events even if the server does not
# suggest it earlier (BookingWorkflowInput.history_limit overrides it).
HISTORY_EVENTS_LIMIT = 2000

In = TypeVar("In")  # an activity's input
Out = TypeVar("Out")  # and its output


class WorkflowCore:
    """The booking's state (`self.s`, carried whole through continue-as-new)
    and what happens around it while this run lives."""

    def __init__(self) -> None:
        self.s = BookingState(booking_id="")
        self._decision = PipelineDecision(pipeline=self.s.pipeline)
        self._fresh_decision = False  # the decision was just read: no need to read it again
        self._cancel_requested: tuple[str | None, str | None] | None = None
        # Queued signal decisions with the version (round) they were made in.
        self._pending_signals: list[tuple[ManualReviewDecision, int]] = []
        # Serialises handlers and the main loop around state-changing steps.
        self._lock = asyncio.Lock()
        self._notify: tuple[str, ...] = ()  # moved guests to tell after a confirm
        # patch "cancellation-message", decided once at the start of run(): a
        # cancel sends the guest's cancellation message (and still tells the
        # guests this booking's confirm moved)
        self._cancellation_message = False
        # patch "email-local-activity", decided once at the start of run():
        # with a local mail transport (the decision says so) a guest message
        # is a local activity, sent in the workflow task that confirmed
        self._email_local = False
        self._history_limit = HISTORY_EVENTS_LIMIT

    # ------------------------------------------------------------ activities

    async def _local(self, fn: Callable[[Any, In], Awaitable[Out]], arg: In,
                     timeout: timedelta = ACTIVITY_TIMEOUT) -> Out:
        """A short database step as a local activity, retried like any
        infrastructure error."""
        return await workflow.execute_local_activity_method(
            fn, arg, start_to_close_timeout=timeout, retry_policy=INFRA_RETRY,
        )

    async def _send_email(self, booking_id: str, kind: str) -> EmailResult:
        """One guest message from the outbox, on the mail retry policy: a
        regular activity when it talks to an outside system (SMTP); a local
        activity when the transport is the worker's file mailbox (patch
        "email-local-activity": one workflow task and no activity task less
        per booking, issue 27)."""
        if self._email_local and self._decision.email_local:
            local: EmailResult = await workflow.execute_local_activity_method(
                BookingActivities.send_confirmation_email, EmailRequest(booking_id, kind=kind),
                start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=EMAIL_RETRY,
            )
            return local
        result: EmailResult = await workflow.execute_activity_method(
            BookingActivities.send_confirmation_email, EmailRequest(booking_id, kind=kind),
            start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=EMAIL_RETRY,
        )
        return result

    async def _begin(self) -> BeginResult:
        """Verify the booking (walking created -> capacity_verified ->
        assignment_pending, or failed) and read the flags, in one step."""
        begun = await self._local(BookingActivities.begin_booking,
                                  VerifyRequest(self.s.booking_id))
        self._set_decision(begun.decision)
        return begun

    async def _decide(self) -> None:
        self._set_decision(await self._local(
            FlagActivities.decide_pipeline,
            DecisionRequest(self.s.booking_id, self.s.restaurant_id)))

    def _set_decision(self, decision: PipelineDecision) -> None:
        self._decision = decision
        self.s.pipeline = decision.pipeline
        self._fresh_decision = True

    async def _reload(self) -> None:
        """A version mismatch aborts the step: reload and continue from the truth."""
        ctx = (await self._begin()).context
        self._apply(ctx.state, ctx.version, ctx.reason)

    async def _transition(self, to_state: AssignmentState, *, reason: str | None = None,
                          actor: str | None = None,
                          metadata: dict[str, Any] | None = None) -> bool:
        result: TransitionResult = await self._local(
            BookingActivities.transition_state,
            TransitionRequest(booking_id=self.s.booking_id, expected_version=self.s.version,
                              to_state=to_state.value, reason=reason, actor=actor,
                              metadata=metadata or {}),
        )
        if result.conflict:
            metrics.record_version_conflict(workflow.metric_meter())
            workflow.logger.warning("transition to %s lost a race: %s", to_state, result.reason)
            await self._reload()
            return False
        self._apply(result.state, result.version, reason)
        self._publish()
        return True

    # ----------------------------------------------------------------- state

    def _apply(self, state: str, version: int, reason: str | None) -> None:
        self.s.state = state
        self.s.version = version
        if reason:
            self.s.last_reason = reason

    def _publish(self) -> None:
        """Keep the Temporal UI current: search attributes and details."""
        s = self.s
        workflow.upsert_search_attributes([
            sa.ASSIGNMENT_STATE.value_set(s.state),
            sa.RESTAURANT_ID.value_set(s.restaurant_id),
            sa.ASSIGNMENT_ATTEMPTS.value_set(s.attempts),
            sa.ASSIGNMENT_PIPELINE.value_set(s.pipeline.value),
        ])
        details = f"{s.state} (v{s.version}), attempts {s.attempts}"
        if s.tables:
            details += f", tables {', '.join(s.tables)}"
        if s.last_reason and s.state != AssignmentState.CONFIRMED:
            details += f": {s.last_reason}"
        workflow.set_current_details(details)

    def _record_outcome(self, outcome: str) -> None:
        """Metrics for the automatic pipeline's first outcome (once per booking;
        the SDK's workflow meter drops recordings during replay)."""
        if self.s.outcome_recorded:
            return
        self.s.outcome_recorded = True
        latency = (workflow.now() - workflow.info().start_time).total_seconds()
        metrics.record_settled(
            workflow.metric_meter(), self.s.pipeline, outcome, self.s.attempts,
            latency_seconds=latency if outcome == AssignmentState.CONFIRMED else None,
        )

    def _outcome(self) -> BookingOutcome:
        s = self.s
        return BookingOutcome(booking_id=s.booking_id, state=s.state, version=s.version,
                              tables=s.tables, strategy=s.strategy, reason=s.last_reason,
                              attempts=s.attempts, pipeline=s.pipeline)

    async def _sleep_unless_cancelled(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await workflow.wait_condition(lambda: self._cancel_requested is not None,
                                          timeout=timedelta(seconds=seconds))
        except TimeoutError:
            pass

    # ------------------------------------------------------- bounded history

    def _may_continue_as_new(self) -> bool:
        """The history is long and nothing is in hand: no queued decision, no
        cancel, no running handler (those are handled first)."""
        info = workflow.info()
        long = (info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._history_limit)
        return (long and not self._pending_signals and self._cancel_requested is None
                and workflow.all_handlers_finished())

    def _continue_as_new_if_long(self) -> None:
        """Continue as new, carrying the state whole (PostgreSQL stays the
        truth), when the history grew long: a booking can wait weeks in manual
        review or retry through a long database outage."""
        if not self._may_continue_as_new():
            return
        workflow.logger.info("continuing as new after %s history events",
                             workflow.info().get_current_history_length())
        limit = self._history_limit if self._history_limit != HISTORY_EVENTS_LIMIT else 0
        workflow.continue_as_new(BookingWorkflowInput(
            booking_id=self.s.booking_id, history_limit=limit, carried=self.s,
        ))


def cause_message(err: ActivityError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause or err)
