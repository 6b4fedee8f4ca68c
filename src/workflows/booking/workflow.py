"""BookingAssignmentWorkflow: one durable workflow per booking.

It reads like the state diagram of docs/architecture.md:

    created -> capacity_verified -> assignment_pending     (begin: verified)
    assignment_pending -> assignment_in_progress -> assigned -> confirmed
    assignment_in_progress -> assignment_pending           (failed attempt, attempts left)
    assignment_in_progress -> manual_review                (last attempt of the round failed)
    manual_review -> assignment_pending | assigned | failed  (operator, review.py)
    any state but failed/cancelled -> cancelled            (cancel.py)

Every state change happens in an activity that writes it to PostgreSQL with an
optimistic version check; this class only decides what comes next. Each
automatic attempt, by the engine (v3) or by the legacy planner, is one local
activity (`run_attempt`): slot, assignment_in_progress, plan, confirm or the
failed attempt, in one transaction.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.booking import BookingActivities
    from seatflow import metrics
    from seatflow.domain.assignment import AttemptOutcome, Pipeline
    from seatflow.domain.messages import (
        AttemptRequest,
        AttemptResult,
        BookingOutcome,
        BookingState,
        BookingStatus,
        BookingWorkflowInput,
        LegacySummaryRequest,
    )
    from seatflow.domain.shadow import NOT_SEATED, SEATED, ShadowInput
    from seatflow.domain.states import (
        ASSIGNING,
        AUTOMATIC_OUTCOMES,
        AWAITING_OPERATOR,
        TERMINAL,
        AssignmentState,
        after_failed_attempt,
        backoff_seconds,
        slot_retry_seconds,
    )
    from seatflow.domain.workflow_ids import shadow_workflow_id
    from workflows.booking.cancel import Cancellation
    from workflows.booking.core import ACTIVITY_TIMEOUT
    from workflows.booking.review import ManualReview

# How long an attempt waits for a restaurant slot inside its local activity
# before handing the wait to a durable workflow timer. Waiting in the
# activity costs nothing (a place in the process's queue); each hand-over
# costs a timer, a workflow task and another local activity. At 0.5 s a
# burst of 100 on one restaurant handed over several times per booking, more
# the slower the box, so the worker's CPU per booking grew with wall time
# (issue 27). The worker heartbeats the workflow task meanwhile; a cancel
# signalled during the wait is applied when it ends.
SLOT_WAIT_SECONDS = 2.0

S = AssignmentState


@workflow.defn(name="BookingAssignmentWorkflow")
class BookingAssignmentWorkflow(ManualReview, Cancellation):
    @workflow.run
    async def run(self, inp: BookingWorkflowInput) -> BookingOutcome:
        # Decided once, before the first command (docs/architecture.md).
        self._cancellation_message = workflow.patched("cancellation-message")
        self._email_local = workflow.patched("email-local-activity")
        self.s.booking_id = inp.booking_id
        if inp.history_limit:
            self._history_limit = inp.history_limit
        ctx = (await self._begin()).context
        s = self.s
        s.restaurant_id, s.table_ids, s.start = ctx.restaurant_id, ctx.table_ids, ctx.start
        s.attempts = s.round_start = ctx.attempts_used
        self._apply(ctx.state, ctx.version, ctx.reason)
        if inp.carried is not None:
            self._resume(inp.carried)
        elif ctx.state in TERMINAL:
            return await self._settled_before_start()
        while True:
            if self._cancel_requested and await self._cancel():
                return await self._close()
            self._continue_as_new_if_long()
            if s.state in ASSIGNING:
                await self._assign_automatically()
                if s.state in AUTOMATIC_OUTCOMES:
                    self._record_outcome(s.state)
            elif s.state == S.MANUAL_REVIEW:
                await self._await_operator()
            elif s.state not in TERMINAL:
                # created / capacity_verified are walked by `begin` and assigned
                # commits together with confirmed, so this is a booking changed
                # behind the workflow's back: fail the run with the reason
                # instead of spinning (`seatflow bookings resume` starts a new
                # run once it is fixed).
                raise ApplicationError(
                    f"booking {s.booking_id} is {s.state} (v{s.version}), a state "
                    "the workflow cannot continue from",
                    type="UnexpectedState", non_retryable=True,
                )
            if self._cancel_requested:
                if await self._cancel():
                    return await self._close()
                continue
            if s.state == S.CONFIRMED:
                await self._send_emails()
                if self._cancel_requested:
                    continue  # cancelled while the email was being sent
                return await self._close()
            if s.state in TERMINAL:  # failed or cancelled
                return await self._close()

    async def _settled_before_start(self) -> BookingOutcome:
        """The booking was settled before this workflow started (or verifying
        found it invalid), or this run is a retry of one that settled it."""
        s = self.s
        if s.state != S.FAILED:
            s.last_reason = "terminal_state"
        if s.state == S.CONFIRMED:
            # Its email may still be in the outbox; the send is a no-op when it
            # went out already.
            await self._send_emails()
            if self._cancel_requested and await self._cancel():
                return await self._close()
        self._publish()
        self._record_outcome(S.FAILED if s.state == S.FAILED else "noop")
        return await self._close()

    def _resume(self, carried: BookingState) -> None:
        """A continued run: the database gave the state; the carried value
        gives what only the workflow knows."""
        s = self.s
        s.round_start = min(carried.round_start, s.attempts)
        s.outcome_recorded = carried.outcome_recorded
        s.runs = carried.runs + 1
        if carried.review_deadline is not None and carried.review_version == s.version:
            s.review_version, s.review_deadline = carried.review_version, carried.review_deadline

    async def _close(self) -> BookingOutcome:
        """The outcome, once every running handler has finished (an update
        that lost the race is refused with the final state, not aborted)."""
        if not workflow.all_handlers_finished():
            await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    # ------------------------------------------------------ automatic attempts

    async def _assign_automatically(self) -> None:
        """Attempts until confirmed, manual review, or cancellation."""
        while self.s.state in ASSIGNING:
            if self._cancel_requested:
                return
            self._continue_as_new_if_long()
            if not self._fresh_decision:  # run() may have just decided
                await self._decide()
            self._fresh_decision = False
            if self.s.pipeline == Pipeline.LEGACY:
                # Kill switch or rollout gate: this booking continues on the
                # legacy planner from here, with no deploy.
                await self._legacy_path()
                return
            last_of_round = self.s.round_start + self._decision.max_attempts
            on_failure = after_failed_attempt(self.s.attempts + 1, last_of_round)
            await self._attempt(Pipeline.V3, on_failure)
            if self.s.state == S.ASSIGNMENT_PENDING:
                await self._back_off()

    async def _attempt(self, pipeline: Pipeline, on_failure: S) -> AttemptResult | None:
        """One automatic attempt as one local activity. The policy for a failed
        attempt is decided by the caller, before the call; waiting for a
        restaurant slot beyond the activity's short bounded wait is a durable
        timer and never consumes an attempt. None: nothing was attempted
        (cancelled while waiting, or the version moved and was reloaded)."""
        s = self.s
        attempt_no = s.attempts + 1
        waited_ms = 0.0
        while True:
            result: AttemptResult = await self._local(
                BookingActivities.run_attempt,
                AttemptRequest(
                    booking_id=s.booking_id, restaurant_id=s.restaurant_id,
                    expected_version=s.version, attempt_no=attempt_no,
                    on_failure=on_failure.value, pipeline=pipeline,
                    max_parallel=self._decision.max_parallel,
                    slot_wait_seconds=SLOT_WAIT_SECONDS, waited_ms=waited_ms,
                    decision_inputs=self._decision.inputs,
                ),
                timeout=ACTIVITY_TIMEOUT + timedelta(seconds=SLOT_WAIT_SECONDS),
            )
            if result.outcome != AttemptOutcome.BUSY:
                break
            delay = slot_retry_seconds(workflow.random().random())
            waited_ms = result.wait_ms + delay * 1000
            await self._sleep_unless_cancelled(delay)
            if self._cancel_requested:
                return None
            self._continue_as_new_if_long()  # a long wait for a busy restaurant
        if result.outcome == AttemptOutcome.CONFLICT:
            metrics.record_version_conflict(workflow.metric_meter())
            workflow.logger.warning("attempt %s lost a race: %s", attempt_no, result.reason)
            await self._reload()
            return None
        metrics.record_permit_wait(workflow.metric_meter(), result.wait_ms / 1000)
        s.attempts = attempt_no
        self._apply(result.state, result.version, result.reason)
        if result.outcome == AttemptOutcome.CONFIRMED:
            s.tables, s.strategy, self._notify = result.tables, result.strategy, result.notify
        self._publish()
        return result

    async def _back_off(self) -> None:
        """The delay after a failed attempt (exponential, capped, jittered)."""
        d = self._decision
        delay = backoff_seconds(self.s.attempts - self.s.round_start, d.retry_base_seconds,
                                d.retry_cap_seconds, workflow.random().random())
        workflow.logger.info("attempt %s failed (%s); next in %.2fs",
                             self.s.attempts, self.s.last_reason, delay)
        await self._sleep_unless_cancelled(delay)

    # ------------------------------------------------------------ legacy path

    async def _legacy_path(self) -> None:
        """The legacy planner loop: first fit, up to len(delays) + 1 tries with
        fixed delays, the same one-transaction attempt and the same one-time
        email; then the shadow, when it is on."""
        delays = self._decision.legacy_delays_seconds
        tries = 0
        as_of = ""
        while self.s.state in ASSIGNING:
            if self._cancel_requested:
                return
            tries += 1
            final = tries > len(delays)
            result = await self._attempt(Pipeline.LEGACY,
                                         S.MANUAL_REVIEW if final else S.ASSIGNMENT_PENDING)
            if result is not None:
                as_of = result.as_of or as_of
            if self._cancel_requested and self.s.state in ASSIGNING:
                return
            if self.s.state != S.ASSIGNMENT_PENDING:
                break
            await self._sleep_unless_cancelled(delays[min(tries, len(delays)) - 1])
            await self._decide()
            if self.s.pipeline != Pipeline.LEGACY:
                return  # rolled forward to V3: the caller continues there
        seated = self.s.state == S.CONFIRMED
        await self._local(BookingActivities.record_legacy_summary, LegacySummaryRequest(
            booking_id=self.s.booking_id, outcome=SEATED if seated else NOT_SEATED,
            tries=tries, tables=self.s.tables, reason=None if seated else self.s.last_reason,
            as_of=as_of,
        ))
        if self._decision.shadow and (seated or self.s.state in AWAITING_OPERATOR):
            await self._start_shadow(seated, as_of)

    async def _start_shadow(self, seated: bool, as_of: str) -> None:
        """Fire and forget: the shadow's failure never affects the booking."""
        s = self.s
        try:
            await workflow.start_child_workflow(
                "ShadowAssignmentWorkflow",
                ShadowInput(booking_id=s.booking_id, restaurant_id=s.restaurant_id,
                            legacy_outcome=SEATED if seated else NOT_SEATED,
                            legacy_tables=s.tables,
                            legacy_reason=None if seated else s.last_reason, as_of=as_of),
                id=shadow_workflow_id(s.booking_id),
                task_queue=self._decision.shadow_task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                execution_timeout=timedelta(minutes=10),
            )
        except Exception as err:  # noqa: BLE001 - e.g. already started by a previous run
            workflow.logger.warning("shadow not started: %s", err)

    # ----------------------------------------------------------------- email

    async def _send_emails(self) -> None:
        """The one confirmation email, then the `table_changed` email of each
        guest that re-packing moved to seat this booking (queued in the same
        transaction as the move). The outbox row makes a retry harmless."""
        for booking_id, kind in ((self.s.booking_id, "confirmation"),
                                 *((moved, "table_changed") for moved in self._notify)):
            await self._send_email(booking_id, kind)
        self._notify = ()

    # ----------------------------------------------------------------- query

    @workflow.query(name="status")
    def status(self) -> BookingStatus:
        s = self.s
        return BookingStatus(booking_id=s.booking_id, state=s.state, version=s.version,
                             attempts=s.attempts, last_reason=s.last_reason,
                             tables=list(s.tables), strategy=s.strategy, pipeline=s.pipeline)
