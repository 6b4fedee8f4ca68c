"""BookingAssignmentWorkflow: one durable workflow per booking.

It reads like the state diagram of docs/architecture.md:

    created -> capacity_verified -> assignment_pending -> assignment_in_progress
    assignment_in_progress -> assigned -> confirmed            (success)
    assignment_in_progress -> assignment_pending               (retry, attempts < max)
    assignment_in_progress -> manual_review                    (max attempts used)
    assignment_pending -> manual_review                        (start passed before any attempt)
    manual_review -> assignment_pending | assigned | failed    (operator decision)
    any state but failed/cancelled -> cancelled                (booking cancelled)

Every state change happens in an activity that writes it to PostgreSQL with an
optimistic version check; this class only decides what comes next.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.booking import BookingActivities
    from activities.flags import FlagActivities
    from seatflow import metrics
    from seatflow.domain.messages import (
        AttemptRequest,
        AttemptResult,
        BeginResult,
        BookingContext,
        BookingOutcome,
        BookingStatus,
        BookingWorkflowInput,
        CancelRequest,
        CarriedState,
        ConfirmRequest,
        ConfirmResult,
        DecisionRequest,
        EmailRequest,
        EventRequest,
        FailedAttemptRequest,
        FindPlansRequest,
        FindPlansResult,
        LegacySummaryRequest,
        ManualReviewDecision,
        ManualReviewResult,
        PermitRequest,
        PipelineDecision,
        TransitionRequest,
        TransitionResult,
        VerifyRequest,
    )
    from seatflow.domain.planning import Plan
    from seatflow.domain.review import InvalidDecision, parse_cancel, parse_decision
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
    from workflows import search_attributes as sa

# Infrastructure errors (database down, timeouts) retry here, forever, and
# never consume an assignment attempt; business errors are return values.
INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=["BookingNotFound", "IllegalTransition"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=10)
# Short database steps run as local activities: in the worker that runs the
# workflow, with no task-queue round trip per step (several per workflow task).
# They are retried like activities and recorded as markers in the history.
# Waiting for a permit and sending email stay regular activities: one waits
# (heartbeating) and the other talks to an outside system.

# Patch ids (workflow.patched): workflows started before a change keep the
# command sequence they were started with; see docs/architecture.md.
# one-hop-attempt: verify + decide in one local activity, and each automatic
# attempt (slot, in_progress, search, confirm or failed attempt) in one.
ONE_HOP_PATCH = "one-hop-attempt"
# Hardening (each guards one change of the command sequence, so histories
# recorded before it replay unchanged):
# cancel-after-email: a cancel that arrived while the confirmation email was
#   being sent is applied after the send instead of being dropped.
CANCEL_AFTER_EMAIL_PATCH = "cancel-after-email"
# handlers-finish-before-close: the workflow waits for running update and
#   signal handlers (they refuse with the final state) before it completes.
HANDLERS_FINISH_PATCH = "handlers-finish-before-close"
# stale-decision-event: a queued signal decision made in an earlier round of
#   manual review is dropped with an observability event.
STALE_DECISION_PATCH = "stale-decision-event"
# review-deadline-fixed: the manual-review deadline is fixed when the booking
#   enters manual review; a start that has already passed gets a grace period.
REVIEW_DEADLINE_PATCH = "review-deadline-fixed"
# bounded-history: continue-as-new when the history grows long.
BOUNDED_HISTORY_PATCH = "bounded-history"
# strict-cancel-payload: a malformed cancel_booking payload is logged and
#   ignored instead of reaching the cancel activity.
STRICT_CANCEL_PATCH = "strict-cancel-payload"
# handler-errors-survive: an activity error met while applying a queued signal
#   decision or a cancel is logged; the workflow keeps running.
HANDLER_ERRORS_PATCH = "handler-errors-survive"
# Continue-as-new at this many history events even if the server does not
# suggest it earlier (BookingWorkflowInput.history_limit overrides it).
HISTORY_EVENTS_LIMIT = 2000
# Manual review of a booking whose start has already passed (started late by
# the intake relay after an outage) waits this long instead of expiring at once.
PAST_START_REVIEW_SECONDS = 24 * 3600.0
# How long an attempt waits for a restaurant slot inside its local activity
# before handing the wait to a durable workflow timer.
SLOT_WAIT_SECONDS = 0.5


@workflow.defn(name="BookingAssignmentWorkflow")
class BookingAssignmentWorkflow:
    def __init__(self) -> None:
        self._booking_id = ""
        self._restaurant_id = ""
        self._state: str = AssignmentState.CREATED
        self._version = 0
        self._attempts = 0  # attempts used in total
        self._round_start = 0  # attempts used before the current round (operator retry)
        self._last_reason: str | None = None
        self._tables: tuple[str, ...] = ()
        self._strategy: str | None = None
        self._pipeline = "v3"
        self._table_ids: frozenset[str] = frozenset()
        self._cancel_requested: tuple[str | None, str | None] | None = None
        # Queued signal decisions with the version (round) they were made in.
        self._pending_signals: list[tuple[ManualReviewDecision, int]] = []
        self._lock = asyncio.Lock()
        self._decision = PipelineDecision(pipeline="v3")
        self._fresh_decision = False
        self._outcome_recorded = False
        self._one_hop = False
        self._notify: tuple[str, ...] = ()
        # Patches in force for this run, each decided once at the start of
        # run(), before any local activity: a patched() call made later can fall
        # in another workflow task on replay (a task heartbeated while a local
        # activity ran) and would not match its marker.
        self._started = False
        self._bounded = False  # BOUNDED_HISTORY_PATCH
        self._cancel_after_email = False  # CANCEL_AFTER_EMAIL_PATCH
        self._drain_handlers = False  # HANDLERS_FINISH_PATCH
        self._drop_stale_decisions = False  # STALE_DECISION_PATCH
        self._fixed_deadline = False  # REVIEW_DEADLINE_PATCH
        self._strict_cancel = False  # STRICT_CANCEL_PATCH
        self._survive_errors = False  # HANDLER_ERRORS_PATCH
        # malformed cancels that arrived before run() decided the patches
        self._early_bad_cancels: list[tuple[str | None, str | None, str]] = []
        self._history_limit = HISTORY_EVENTS_LIMIT
        self._start: datetime | None = None
        # The manual-review round in progress: the version it was entered at
        # and its fixed deadline (REVIEW_DEADLINE_PATCH).
        self._review_version: int | None = None
        self._review_deadline: datetime | None = None
        self._carried_runs = 0  # runs continued-as-new before this one

    # ----------------------------------------------------------------- run

    @workflow.run
    async def run(self, inp: BookingWorkflowInput) -> BookingOutcome:
        self._booking_id = inp.booking_id
        self._one_hop = workflow.patched(ONE_HOP_PATCH)
        self._bounded = workflow.patched(BOUNDED_HISTORY_PATCH)
        self._cancel_after_email = workflow.patched(CANCEL_AFTER_EMAIL_PATCH)
        self._drain_handlers = workflow.patched(HANDLERS_FINISH_PATCH)
        self._drop_stale_decisions = workflow.patched(STALE_DECISION_PATCH)
        self._fixed_deadline = workflow.patched(REVIEW_DEADLINE_PATCH)
        self._strict_cancel = workflow.patched(STRICT_CANCEL_PATCH)
        self._survive_errors = workflow.patched(HANDLER_ERRORS_PATCH)
        self._started = True
        for actor, reason, error in self._early_bad_cancels:
            self._on_bad_cancel(actor, reason, error)
        self._early_bad_cancels.clear()
        if inp.history_limit:
            self._history_limit = inp.history_limit
        if self._one_hop:
            begun: BeginResult = await workflow.execute_local_activity_method(
                BookingActivities.begin_booking,
                VerifyRequest(self._booking_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=INFRA_RETRY,
            )
            ctx = begun.context
            self._set_decision(begun.decision)
        else:
            ctx = await self._verify()
        self._restaurant_id = ctx.restaurant_id
        self._table_ids = frozenset(ctx.table_ids)
        self._attempts = self._round_start = ctx.attempts_used
        self._apply(ctx.state, ctx.version, ctx.reason)
        if inp.carried is not None:
            self._resume_carried(inp.carried)
        if not self._one_hop:
            await self._decide()
        if ctx.state in TERMINAL and inp.carried is None:
            reason = ctx.reason if ctx.state == AssignmentState.FAILED else "terminal_state"
            self._last_reason = reason
            if ctx.state == AssignmentState.CONFIRMED:
                # Confirmed already: by another path, or by this workflow before
                # its task was retried. Its email may still be in the outbox; the
                # send is a no-op when it went out already.
                await self._send_confirmation()
                if (self._cancel_requested and self._cancel_after_email
                        and await self._cancel()):
                    return await self._close()
            self._publish()
            # failed here: verification found the booking invalid; otherwise
            # the booking was settled before this workflow started.
            self._record_outcome(AssignmentState.FAILED if ctx.state == AssignmentState.FAILED
                                 else "noop")
            return await self._close()

        deadline = self._manual_review_deadline(ctx)
        while True:
            if self._cancel_requested and await self._cancel():
                return await self._close()
            self._continue_as_new_if_long()
            if self._state in ASSIGNING:
                await self._assign_automatically()
                if self._state in AUTOMATIC_OUTCOMES:
                    self._record_outcome(self._state)
            elif self._state == AssignmentState.MANUAL_REVIEW:
                await self._await_operator(deadline)
            elif self._state not in TERMINAL:
                # created / capacity_verified are walked by verification and
                # assigned commits together with confirmed, so this is a
                # booking changed behind the workflow's back: fail the run with
                # the reason instead of spinning (the booking stays as it is;
                # `seatflow bookings resume` starts a new run once it is fixed).
                raise ApplicationError(
                    f"booking {self._booking_id} is {self._state} (v{self._version}), a state "
                    "the workflow cannot continue from",
                    type="UnexpectedState", non_retryable=True,
                )
            if self._cancel_requested:
                if await self._cancel():
                    return await self._close()
                continue
            if self._state == AssignmentState.CONFIRMED:
                await self._send_confirmation()
                await self._tell_moved_guests()
                if self._cancel_requested and self._cancel_after_email:
                    continue  # cancelled while the email was being sent
                return await self._close()
            if self._state in TERMINAL:  # failed or cancelled (confirmed returned above)
                return await self._close()

    async def _assign_automatically(self) -> None:
        """Attempts until confirmed, manual review, or cancellation."""
        while self._state in ASSIGNING:
            if self._cancel_requested:
                return
            self._continue_as_new_if_long()
            if not self._fresh_decision:  # run() may have just decided
                await self._decide()
            self._fresh_decision = False
            if self._pipeline == "legacy":
                # Kill switch or rollout gate: this booking continues on the
                # legacy planner from here, with no deploy.
                await self._legacy_path()
                return
            if self._one_hop:
                await self._attempt()
                if self._state == AssignmentState.ASSIGNMENT_PENDING:
                    await self._back_off()
                continue
            attempt_no = self._attempts + 1
            # Waiting for a permit never consumes an attempt.
            permit_wait_ms = await self._acquire_permit()
            if self._cancel_requested:
                return
            if self._state == AssignmentState.ASSIGNMENT_PENDING:
                moved = await self._transition(
                    AssignmentState.ASSIGNMENT_IN_PROGRESS,
                    metadata={"attempt_no": attempt_no, "pipeline": "v3",
                              "decision": self._decision.inputs,
                              "permit_wait_ms": permit_wait_ms},
                )
                if not moved:
                    continue
            found = await workflow.execute_local_activity_method(
                BookingActivities.find_plans,
                FindPlansRequest(self._booking_id, attempt_no),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=INFRA_RETRY,
            )
            max_attempts = self._round_start + self._decision.max_attempts
            await self._finish_attempt(found, attempt_no, max_attempts, permit_wait_ms)
            if self._state == AssignmentState.ASSIGNMENT_PENDING:
                await self._back_off()

    async def _attempt(self) -> None:
        """One automatic attempt as one local activity. The policy for a failed
        attempt is decided here, before the call; waiting for a restaurant slot
        beyond the activity's short bounded wait is a durable timer and never
        consumes an attempt."""
        attempt_no = self._attempts + 1
        on_failure = after_failed_attempt(
            attempt_no, self._round_start + self._decision.max_attempts
        )
        waited_ms = 0.0
        while True:
            result: AttemptResult = await workflow.execute_local_activity_method(
                BookingActivities.run_attempt,
                AttemptRequest(
                    booking_id=self._booking_id,
                    restaurant_id=self._restaurant_id,
                    expected_version=self._version,
                    attempt_no=attempt_no,
                    on_failure=on_failure.value,
                    max_parallel=self._decision.max_parallel,
                    slot_wait_seconds=SLOT_WAIT_SECONDS,
                    waited_ms=waited_ms,
                    decision_inputs=self._decision.inputs,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT + timedelta(seconds=SLOT_WAIT_SECONDS),
                retry_policy=INFRA_RETRY,
            )
            if result.outcome != "busy":
                break
            delay = slot_retry_seconds(workflow.random().random())
            waited_ms = result.wait_ms + delay * 1000
            await self._sleep_unless_cancelled(delay)
            if self._cancel_requested:
                return
            self._continue_as_new_if_long()  # a long wait for a busy restaurant
        if result.outcome == "conflict":
            metrics.record_version_conflict(workflow.metric_meter())
            workflow.logger.warning("attempt %s lost a race: %s", attempt_no, result.reason)
            await self._reload()
            return
        metrics.record_permit_wait(workflow.metric_meter(), result.wait_ms / 1000)
        self._attempts = attempt_no
        self._apply(result.state, result.version, result.reason)
        if result.outcome == "confirmed":
            self._tables = result.tables
            self._strategy = result.strategy
            self._notify = result.notify
        self._publish()

    async def _back_off(self) -> None:
        """The delay after a failed attempt (exponential, capped, jittered)."""
        failed_in_round = self._attempts - self._round_start
        delay = backoff_seconds(
            failed_in_round,
            self._decision.retry_base_seconds,
            self._decision.retry_cap_seconds,
            workflow.random().random(),
        )
        workflow.logger.info(
            "attempt %s failed (%s); next in %.2fs", self._attempts, self._last_reason, delay
        )
        await self._sleep_unless_cancelled(delay)

    async def _finish_attempt(
        self, found: FindPlansResult, attempt_no: int, max_attempts: int,
        permit_wait_ms: float | None = None,
    ) -> None:
        """Confirm the best plan still free, or record the failed attempt."""
        if found.plans:
            result = await self._confirm(found, attempt_no, max_attempts, permit_wait_ms)
            self._attempts = attempt_no
            self._apply(result.state, result.version, result.reason)
            if result.confirmed:
                self._tables = result.tables
                self._strategy = result.strategy
        else:
            outcome = await workflow.execute_local_activity_method(
                BookingActivities.record_failed_attempt,
                FailedAttemptRequest(
                    booking_id=self._booking_id,
                    expected_version=self._version,
                    attempt_no=attempt_no,
                    reason=found.reason or "no valid plan",
                    max_attempts=max_attempts,
                    pipeline=self._pipeline,
                    permit_wait_ms=permit_wait_ms,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=INFRA_RETRY,
            )
            self._attempts = attempt_no
            self._apply(outcome.state, outcome.version, found.reason)
            if outcome.conflict:
                metrics.record_version_conflict(workflow.metric_meter())
                await self._reload()
        self._publish()

    async def _acquire_permit(self) -> float:
        waited = 0.0
        while not self._cancel_requested:
            # A local activity: acquiring, searching and confirming then run in
            # one workflow task, so a permit is held for milliseconds, not for
            # several task-queue round trips.
            grant = await workflow.execute_local_activity_method(
                BookingActivities.acquire_permit,
                PermitRequest(
                    booking_id=self._booking_id,
                    restaurant_id=self._restaurant_id,
                    max_parallel=self._decision.max_parallel,
                    wait_seconds=self._decision.permit_wait_seconds,
                ),
                start_to_close_timeout=timedelta(
                    seconds=self._decision.permit_wait_seconds + 10
                ),
                retry_policy=INFRA_RETRY,
            )
            waited += grant.wait_ms
            if grant.granted:
                metrics.record_permit_wait(workflow.metric_meter(), waited / 1000)
                break
        return waited

    # --------------------------------------------------------- legacy path

    async def _legacy_path(self) -> None:
        """The legacy planner loop: first fit with `quote_tables`, up to
        len(delays) + 1 tries with fixed delays, the same atomic confirm and
        the same one-time email; then the shadow, when it is on."""
        delays = self._decision.legacy_delays_seconds
        max_tries = len(delays) + 1
        tries = 0
        as_of = ""
        while self._state in ASSIGNING:
            if self._cancel_requested:
                return
            tries += 1
            attempt_no = self._attempts + 1
            if self._state == AssignmentState.ASSIGNMENT_PENDING:
                moved = await self._transition(
                    AssignmentState.ASSIGNMENT_IN_PROGRESS,
                    metadata={"attempt_no": attempt_no, "pipeline": "legacy",
                              "decision": self._decision.inputs},
                )
                if not moved:
                    continue
            quote = await workflow.execute_local_activity_method(
                BookingActivities.legacy_quote,
                FindPlansRequest(self._booking_id, attempt_no),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=INFRA_RETRY,
            )
            as_of = quote.as_of or as_of
            final = tries >= max_tries
            await self._finish_attempt(quote, attempt_no, attempt_no if final else attempt_no + 1)
            if self._state != AssignmentState.ASSIGNMENT_PENDING:
                break
            await self._sleep_unless_cancelled(delays[min(tries, len(delays)) - 1])
            await self._decide()
            if self._pipeline != "legacy":
                return  # rolled forward to V3: the outer loop continues there
        seated = self._state == AssignmentState.CONFIRMED
        await workflow.execute_local_activity_method(
            BookingActivities.record_legacy_summary,
            LegacySummaryRequest(
                booking_id=self._booking_id, outcome=SEATED if seated else NOT_SEATED,
                tries=tries, tables=self._tables, reason=None if seated else self._last_reason,
                as_of=as_of,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        )
        if self._decision.shadow and (seated or self._state in AWAITING_OPERATOR):
            await self._start_shadow(seated, as_of)

    async def _start_shadow(self, seated: bool, as_of: str) -> None:
        """Fire and forget: the shadow's failure never affects the booking."""
        try:
            await workflow.start_child_workflow(
                "ShadowAssignmentWorkflow",
                ShadowInput(
                    booking_id=self._booking_id,
                    restaurant_id=self._restaurant_id,
                    legacy_outcome=SEATED if seated else NOT_SEATED,
                    legacy_tables=self._tables,
                    legacy_reason=None if seated else self._last_reason,
                    as_of=as_of,
                ),
                id=f"shadow-{self._booking_id}",
                task_queue=self._decision.shadow_task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                execution_timeout=timedelta(minutes=10),
            )
        except Exception as err:  # noqa: BLE001 - e.g. already started by a previous run
            workflow.logger.warning("shadow not started: %s", err)

    async def _confirm(
        self, found: FindPlansResult, attempt_no: int, max_attempts: int,
        permit_wait_ms: float | None = None,
    ) -> ConfirmResult:
        return await workflow.execute_local_activity_method(
            BookingActivities.confirm_plan,
            ConfirmRequest(
                booking_id=self._booking_id,
                expected_version=self._version,
                attempt_no=attempt_no,
                plans=found.plans,
                moves=found.moves,
                pipeline=self._pipeline,
                max_attempts=max_attempts,
                permit_wait_ms=permit_wait_ms,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        )

    # ------------------------------------------------------- manual review

    def _manual_review_deadline(self, ctx: BookingContext) -> datetime | None:
        try:
            self._start = datetime.fromisoformat(ctx.start)
        except ValueError:
            self._start = None
        if self._decision.manual_review_timeout_seconds is not None:
            return None  # relative timeout, measured from entering manual review
        return self._start

    def _fixed_review_deadline(self) -> datetime:
        """The deadline of this manual-review round, fixed when the booking
        entered it: a refused decision never restarts the clock."""
        if self._review_deadline is None or self._review_version != self._version:
            now = workflow.now()
            if self._decision.manual_review_timeout_seconds is not None:
                deadline = now + timedelta(seconds=self._decision.manual_review_timeout_seconds)
            elif self._start is not None and self._start > now:
                deadline = self._start
            elif self._start is not None:
                # The start passed before anyone could decide (e.g. started late
                # after an outage): give operators time instead of expiring now.
                deadline = now + timedelta(seconds=PAST_START_REVIEW_SECONDS)
            else:
                deadline = now + timedelta(hours=24)
            self._review_version, self._review_deadline = self._version, deadline
        return self._review_deadline

    async def _await_operator(self, deadline: datetime | None) -> None:
        if self._fixed_deadline:
            timeout = max(0.0, (self._fixed_review_deadline() - workflow.now()).total_seconds())
        elif self._decision.manual_review_timeout_seconds is not None:
            timeout = self._decision.manual_review_timeout_seconds
        elif deadline is not None:
            timeout = max(0.0, (deadline - workflow.now()).total_seconds())
        else:
            timeout = 24 * 3600.0
        try:
            await workflow.wait_condition(
                lambda: self._state != AssignmentState.MANUAL_REVIEW
                or bool(self._pending_signals)
                or self._cancel_requested is not None
                or self._may_continue_as_new(),
                timeout=timedelta(seconds=timeout) if timeout > 0 else timedelta(milliseconds=1),
            )
        except TimeoutError:
            async with self._lock:
                if self._state == AssignmentState.MANUAL_REVIEW:
                    await self._transition(AssignmentState.FAILED, reason="manual_review_expired")
            return
        while self._pending_signals and self._state == AssignmentState.MANUAL_REVIEW:
            decision, made_at = self._pending_signals.pop(0)
            if made_at != self._version and self._drop_stale_decisions:
                await self._drop_stale(decision, made_at)
                continue
            try:
                await self._resolve(decision)
            except ApplicationError as err:
                workflow.logger.warning("manual-review signal not applied: %s", err.message)
            except ActivityError as err:
                if not self._survive_errors:
                    raise
                workflow.logger.error(
                    "manual-review signal not applied: %s", _cause_message(err))

    async def _drop_stale(self, decision: ManualReviewDecision, made_at: int) -> None:
        """A decision belongs to the round it was made in: one queued in an
        earlier round of manual review is never applied to a later one."""
        message = (
            f"dropped stale {decision.action} by {decision.actor}: made at version "
            f"{made_at}, booking now at version {self._version}"
        )
        workflow.logger.warning("manual-review signal %s", message)
        await workflow.execute_local_activity_method(
            BookingActivities.record_workflow_event,
            EventRequest(
                booking_id=self._booking_id,
                event_type="manual_review.decision_dropped",
                context={"action": decision.action, "actor": decision.actor,
                         "made_at_version": made_at, "version": self._version,
                         "reason": "stale: made in an earlier round of manual review"},
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        )

    @workflow.update(name="resolve_manual_review_update")
    async def resolve_manual_review_update(self, payload: dict[str, Any]) -> ManualReviewResult:
        try:
            decision = parse_decision(payload)
        except InvalidDecision as err:
            raise ApplicationError(str(err), type="InvalidDecision", non_retryable=True) from None
        try:
            return await self._resolve(decision)
        except ActivityError as err:
            raise ApplicationError(
                f"booking {self._booking_id}: {decision.action} not applied: "
                f"{_cause_message(err)}",
                type="DecisionFailed", non_retryable=True,
            ) from None

    @resolve_manual_review_update.validator
    def _validate_resolution(self, payload: dict[str, Any]) -> None:
        try:
            decision = parse_decision(payload)
        except InvalidDecision as err:
            raise ApplicationError(str(err), type="InvalidDecision", non_retryable=True) from None
        self._check_resolvable(decision)

    @workflow.signal(name="resolve_manual_review")
    def resolve_manual_review(self, payload: Any) -> None:
        try:
            decision = parse_decision(payload)
            self._check_resolvable(decision)
        except InvalidDecision as err:
            workflow.logger.warning("ignoring resolve_manual_review signal: %s", err)
            return
        except ApplicationError as err:
            workflow.logger.warning("ignoring resolve_manual_review signal: %s", err.message)
            return
        self._pending_signals.append((decision, self._version))

    def _check_resolvable(self, decision: ManualReviewDecision) -> None:
        """Raises ApplicationError (never a plain exception: in an update
        handler that would fail the workflow task and wedge the workflow)."""
        if self._state in TERMINAL:
            raise ApplicationError(
                f"booking {self._booking_id} was already resolved: {self._state}"
                + (f" ({self._last_reason})" if self._last_reason else ""),
                type="AlreadyResolved", non_retryable=True,
            )
        if self._cancel_requested is not None:
            raise ApplicationError(
                f"booking {self._booking_id} is being cancelled", type="AlreadyResolved",
                non_retryable=True,
            )
        if self._state != AssignmentState.MANUAL_REVIEW:
            raise ApplicationError(
                f"booking {self._booking_id} is {self._state}, not in manual_review",
                type="NotInManualReview", non_retryable=True,
            )
        if decision.action == "assign":
            unknown = [t for t in decision.table_ids if t not in self._table_ids]
            if unknown:
                raise ApplicationError(
                    f"unknown table(s) for restaurant {self._restaurant_id}: {', '.join(unknown)}",
                    type="UnknownTables", non_retryable=True,
                )

    async def _resolve(self, decision: ManualReviewDecision) -> ManualReviewResult:
        async with self._lock:
            self._check_resolvable(decision)
            if decision.action == "assign":
                plan = Plan(tables=tuple(sorted(decision.table_ids)), score=0.0, strategy="manual")
                result = await workflow.execute_local_activity_method(
                    BookingActivities.confirm_plan,
                    ConfirmRequest(
                        booking_id=self._booking_id,
                        expected_version=self._version,
                        attempt_no=self._attempts + 1,
                        plans=(plan,),
                        pipeline=self._pipeline,
                        actor=decision.actor,
                        note=decision.note, force=decision.force,
                    ),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=INFRA_RETRY,
                )
                if not result.confirmed:
                    raise ApplicationError(
                        f"cannot assign {', '.join(plan.tables)}: {result.reason}",
                        type="AssignmentRefused",
                    )
                self._attempts += 1
                self._tables, self._strategy = result.tables, result.strategy
                self._apply(result.state, result.version, f"assigned by {decision.actor}")
            elif decision.action == "retry":
                await self._transition(
                    AssignmentState.ASSIGNMENT_PENDING, reason=f"retry requested by {decision.actor}",
                    actor=decision.actor, metadata={"note": decision.note},
                )
                self._round_start = self._attempts
            else:
                await self._transition(
                    AssignmentState.FAILED, reason=f"rejected by {decision.actor}: {decision.reason}",
                    actor=decision.actor, metadata={"note": decision.note},
                )
            self._publish()
            return ManualReviewResult(
                booking_id=self._booking_id, action=decision.action, state=self._state,
                version=self._version, tables=self._tables,
                message=self._last_reason or "",
            )

    # ------------------------------------------------------- cancellation

    @workflow.signal(name="cancel_booking")
    def cancel_booking(self, payload: Any = None) -> None:
        try:
            actor, reason = parse_cancel(payload)
        except InvalidDecision as err:
            # What a run without STRICT_CANCEL_PATCH did with it:
            actor = payload.get("actor") if isinstance(payload, dict) else None
            reason = payload.get("reason") if isinstance(payload, dict) else None
            if self._started:
                self._on_bad_cancel(actor, reason, str(err))
            else:
                self._early_bad_cancels.append((actor, reason, str(err)))
            return
        self._cancel_requested = (actor, reason)

    def _on_bad_cancel(self, actor: Any, reason: Any, error: str) -> None:
        if self._strict_cancel:
            workflow.logger.warning("ignoring cancel_booking signal: %s", error)
        else:
            self._cancel_requested = (actor, reason)

    async def _cancel(self) -> bool:
        """Apply the requested cancel; False when it could not be applied (the
        error is logged and the workflow carries on)."""
        actor, reason = self._cancel_requested or (None, None)
        async with self._lock:
            try:
                result = await workflow.execute_local_activity_method(
                    BookingActivities.cancel_booking,
                    CancelRequest(self._booking_id, self._version, actor=actor, reason=reason),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=INFRA_RETRY,
                )
            except ActivityError as err:
                if not self._survive_errors:
                    raise
                workflow.logger.error("cancel not applied: %s", _cause_message(err))
                self._cancel_requested = None
                return False
            self._tables = ()
            self._apply(result.state, result.version, reason or "booking cancelled")
            self._publish()
        return True

    async def _close(self) -> BookingOutcome:
        """The outcome, once every running handler has finished (an update
        that lost the race is refused with the final state, not aborted)."""
        if self._drain_handlers and not workflow.all_handlers_finished():
            await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    # ---------------------------------------------------- bounded history

    def _history_is_long(self) -> bool:
        if not self._bounded:
            return False
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._history_limit)

    def _may_continue_as_new(self) -> bool:
        """The history is long and nothing is in hand: no queued decision, no
        cancel, no running handler (those are handled first)."""
        return (self._history_is_long() and not self._pending_signals
                and self._cancel_requested is None and workflow.all_handlers_finished())

    def _continue_as_new_if_long(self) -> None:
        """Continue as new (same booking, state carried over; PostgreSQL stays
        the truth) when the history grew long: a booking can wait weeks in
        manual review or retry through a long database outage."""
        if not self._may_continue_as_new():
            return
        workflow.logger.info(
            "continuing as new after %s history events", workflow.info().get_current_history_length()
        )
        workflow.continue_as_new(BookingWorkflowInput(
            booking_id=self._booking_id,
            restaurant_id=self._restaurant_id,
            history_limit=self._history_limit if self._history_limit != HISTORY_EVENTS_LIMIT else 0,
            carried=CarriedState(
                round_start=self._round_start,
                review_version=self._review_version,
                review_deadline=(self._review_deadline.isoformat()
                                 if self._review_deadline is not None else None),
                outcome_recorded=self._outcome_recorded,
                runs=(self._carried_runs + 1),
            ),
        ))

    def _resume_carried(self, carried: CarriedState) -> None:
        self._round_start = min(carried.round_start, self._attempts)
        self._outcome_recorded = carried.outcome_recorded
        self._carried_runs = carried.runs
        if carried.review_deadline is not None and carried.review_version == self._version:
            self._review_version = carried.review_version
            self._review_deadline = datetime.fromisoformat(carried.review_deadline)

    # ------------------------------------------------------------- queries

    @workflow.query(name="status")
    def status(self) -> BookingStatus:
        return BookingStatus(
            booking_id=self._booking_id,
            state=self._state,
            version=self._version,
            attempts=self._attempts,
            last_reason=self._last_reason,
            tables=list(self._tables),
            strategy=self._strategy,
            pipeline=self._pipeline,
        )

    # ------------------------------------------------------------- helpers

    async def _verify(self) -> BookingContext:
        return await workflow.execute_local_activity_method(
            BookingActivities.verify_booking,
            VerifyRequest(self._booking_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        )

    async def _reload(self) -> None:
        """A version mismatch aborts the step: reload and continue from the truth."""
        ctx = await self._verify()
        self._apply(ctx.state, ctx.version, ctx.reason)

    async def _decide(self) -> None:
        self._set_decision(await workflow.execute_local_activity_method(
            FlagActivities.decide_pipeline,
            DecisionRequest(self._booking_id, self._restaurant_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        ))

    def _set_decision(self, decision: PipelineDecision) -> None:
        self._decision = decision
        self._pipeline = decision.pipeline
        self._fresh_decision = True

    async def _transition(
        self,
        to_state: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        result: TransitionResult = await workflow.execute_local_activity_method(
            BookingActivities.transition_state,
            TransitionRequest(
                booking_id=self._booking_id,
                expected_version=self._version,
                to_state=to_state,
                reason=reason,
                actor=actor,
                metadata=metadata or {},
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=INFRA_RETRY,
        )
        if result.conflict:
            metrics.record_version_conflict(workflow.metric_meter())
            workflow.logger.warning("transition to %s lost a race: %s", to_state, result.reason)
            await self._reload()
            return False
        self._apply(result.state, result.version, reason)
        self._publish()
        return True

    async def _tell_moved_guests(self) -> None:
        """Guests of bookings re-packed to seat this one, who had their
        confirmation already: their `table_changed` email (queued in the same
        transaction as the move). Only the one-hop attempt reports them."""
        for moved in self._notify:
            await workflow.execute_activity_method(
                BookingActivities.send_confirmation_email,
                EmailRequest(moved, kind="table_changed"),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=INFRA_RETRY,
            )
        self._notify = ()

    async def _send_confirmation(self) -> None:
        await workflow.execute_activity_method(
            BookingActivities.send_confirmation_email,
            EmailRequest(self._booking_id),
            # An outside system (SMTP) may be slow; the outbox row makes a retry
            # after a timeout harmless.
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=INFRA_RETRY,
        )

    async def _sleep_unless_cancelled(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await workflow.wait_condition(
                lambda: self._cancel_requested is not None,
                timeout=timedelta(seconds=seconds),
            )
        except TimeoutError:
            pass

    def _apply(self, state: str, version: int, reason: str | None) -> None:
        self._state = state
        self._version = version
        if reason:
            self._last_reason = reason

    def _publish(self) -> None:
        """Keep the Temporal UI current: search attributes and details."""
        workflow.upsert_search_attributes(
            [
                sa.ASSIGNMENT_STATE.value_set(self._state),
                sa.RESTAURANT_ID.value_set(self._restaurant_id),
                sa.ASSIGNMENT_ATTEMPTS.value_set(self._attempts),
                sa.ASSIGNMENT_PIPELINE.value_set(self._pipeline),
            ]
        )
        details = f"{self._state} (v{self._version}), attempts {self._attempts}"
        if self._tables:
            details += f", tables {', '.join(self._tables)}"
        if self._last_reason and self._state != AssignmentState.CONFIRMED:
            details += f": {self._last_reason}"
        workflow.set_current_details(details)

    def _record_outcome(self, outcome: str) -> None:
        """Metrics for the automatic pipeline's first outcome (once per workflow;
        the SDK's workflow meter drops recordings during replay)."""
        if self._outcome_recorded:
            return
        self._outcome_recorded = True
        latency = (workflow.now() - workflow.info().start_time).total_seconds()
        metrics.record_settled(
            workflow.metric_meter(), self._pipeline, outcome, self._attempts,
            latency_seconds=latency if outcome == AssignmentState.CONFIRMED else None,
        )

    def _outcome(self) -> BookingOutcome:
        return BookingOutcome(
            booking_id=self._booking_id,
            state=self._state,
            version=self._version,
            tables=self._tables,
            strategy=self._strategy,
            reason=self._last_reason,
            attempts=self._attempts,
            pipeline=self._pipeline,
        )


def _cause_message(err: ActivityError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause or err)
