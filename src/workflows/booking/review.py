"""Manual review: a booking the automatic attempts could not seat waits for
an operator until its deadline. The decision comes as an update
(`resolve_manual_review_update`: validated, answered) or as a signal
(`resolve_manual_review`: queued, applied in the round it was made in).

    manual_review -> assigned -> confirmed   (assign: the operator's tables)
    manual_review -> assignment_pending      (retry: a new round of attempts)
    manual_review -> failed                  (reject, or the deadline passed)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.booking import BookingActivities
    from seatflow.domain.assignment import DecisionAction
    from seatflow.domain.messages import (
        AssignRequest,
        AssignResult,
        EventRequest,
        ManualReviewDecision,
        ManualReviewResult,
    )
    from seatflow.domain.review import InvalidDecision, parse_decision
    from seatflow.domain.states import TERMINAL, AssignmentState
    from workflows.booking.core import WorkflowCore, cause_message

# Manual review of a booking whose start has already passed (started late by
# the intake relay after an outage) waits this long instead of expiring at once.
PAST_START_REVIEW_SECONDS = 24 * 3600.0


class ManualReview(WorkflowCore):
    # ------------------------------------------------------------- handlers

    @workflow.update(name="resolve_manual_review_update")
    async def resolve_manual_review_update(self, payload: dict[str, Any]) -> ManualReviewResult:
        decision = _parse(payload)
        try:
            return await self._resolve(decision)
        except ActivityError as err:
            raise ApplicationError(
                f"booking {self.s.booking_id}: {decision.action} not applied: "
                f"{cause_message(err)}", type="DecisionFailed", non_retryable=True,
            ) from None

    @resolve_manual_review_update.validator
    def _validate_resolution(self, payload: dict[str, Any]) -> None:
        self._check_resolvable(_parse(payload))

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
        self._pending_signals.append((decision, self.s.version))

    def _check_resolvable(self, decision: ManualReviewDecision) -> None:
        """Raises ApplicationError (never a plain exception: in an update
        handler that would fail the workflow task and wedge the workflow)."""
        s = self.s
        if s.state in TERMINAL:
            raise ApplicationError(
                f"booking {s.booking_id} was already resolved: {s.state}"
                + (f" ({s.last_reason})" if s.last_reason else ""),
                type="AlreadyResolved", non_retryable=True,
            )
        if self._cancel_requested is not None:
            raise ApplicationError(f"booking {s.booking_id} is being cancelled",
                                   type="AlreadyResolved", non_retryable=True)
        if s.state != AssignmentState.MANUAL_REVIEW:
            raise ApplicationError(f"booking {s.booking_id} is {s.state}, not in manual_review",
                                   type="NotInManualReview", non_retryable=True)
        if decision.action == DecisionAction.ASSIGN:
            unknown = [t for t in decision.table_ids if t not in s.table_ids]
            if unknown:
                raise ApplicationError(
                    f"unknown table(s) for restaurant {s.restaurant_id}: {', '.join(unknown)}",
                    type="UnknownTables", non_retryable=True,
                )

    # ------------------------------------------------------------ decisions

    async def _resolve(self, decision: ManualReviewDecision) -> ManualReviewResult:
        async with self._lock:
            self._check_resolvable(decision)
            if decision.action == DecisionAction.ASSIGN:
                await self._assign(decision)
            elif decision.action == DecisionAction.RETRY:
                await self._transition(
                    AssignmentState.ASSIGNMENT_PENDING,
                    reason=f"retry requested by {decision.actor}", actor=decision.actor,
                    metadata={"note": decision.note},
                )
                self.s.round_start = self.s.attempts
            else:
                await self._transition(
                    AssignmentState.FAILED,
                    reason=f"rejected by {decision.actor}: {decision.reason}",
                    actor=decision.actor, metadata={"note": decision.note},
                )
            self._publish()
            s = self.s
            return ManualReviewResult(booking_id=s.booking_id, action=decision.action,
                                      state=s.state, version=s.version, tables=s.tables,
                                      message=s.last_reason or "")

    async def _assign(self, decision: ManualReviewDecision) -> None:
        s = self.s
        result: AssignResult = await self._local(
            BookingActivities.assign_tables,
            AssignRequest(booking_id=s.booking_id, expected_version=s.version,
                          attempt_no=s.attempts + 1, table_ids=decision.table_ids,
                          actor=decision.actor, pipeline=s.pipeline, note=decision.note,
                          force=decision.force),
        )
        if not result.confirmed:
            raise ApplicationError(
                f"cannot assign {', '.join(decision.table_ids)}: {result.reason}",
                type="AssignmentRefused",
            )
        s.attempts += 1
        s.tables, s.strategy = result.tables, result.strategy
        self._apply(result.state, result.version, f"assigned by {decision.actor}")

    # ------------------------------------------------------------- waiting

    def _review_deadline(self) -> datetime:
        """The deadline of this manual-review round, fixed when the booking
        entered it: a refused decision never restarts the clock."""
        s = self.s
        if s.review_deadline is None or s.review_version != s.version:
            now = workflow.now()
            start = datetime.fromisoformat(s.start) if s.start else None
            if self._decision.manual_review_timeout_seconds is not None:
                deadline = now + timedelta(seconds=self._decision.manual_review_timeout_seconds)
            elif start is not None and start > now:
                deadline = start
            elif start is not None:
                # The start passed before anyone could decide (e.g. started late
                # after an outage): give operators time instead of expiring now.
                deadline = now + timedelta(seconds=PAST_START_REVIEW_SECONDS)
            else:
                deadline = now + timedelta(hours=24)
            s.review_version, s.review_deadline = s.version, deadline.isoformat()
        return datetime.fromisoformat(s.review_deadline)

    async def _await_operator(self) -> None:
        timeout = max(0.0, (self._review_deadline() - workflow.now()).total_seconds())
        try:
            await workflow.wait_condition(
                lambda: self.s.state != AssignmentState.MANUAL_REVIEW
                or bool(self._pending_signals)
                or self._cancel_requested is not None
                or self._may_continue_as_new(),
                timeout=timedelta(seconds=timeout) if timeout > 0 else timedelta(milliseconds=1),
            )
        except TimeoutError:
            async with self._lock:
                if self.s.state == AssignmentState.MANUAL_REVIEW:
                    await self._transition(AssignmentState.FAILED, reason="manual_review_expired")
            return
        while self._pending_signals and self.s.state == AssignmentState.MANUAL_REVIEW:
            decision, made_at = self._pending_signals.pop(0)
            if made_at != self.s.version:
                await self._drop_stale(decision, made_at)
                continue
            try:
                await self._resolve(decision)
            except ApplicationError as err:
                workflow.logger.warning("manual-review signal not applied: %s", err.message)
            except ActivityError as err:
                workflow.logger.error("manual-review signal not applied: %s", cause_message(err))

    async def _drop_stale(self, decision: ManualReviewDecision, made_at: int) -> None:
        """A decision belongs to the round it was made in: one queued in an
        earlier round of manual review is never applied to a later one."""
        workflow.logger.warning(
            "manual-review signal dropped: stale %s by %s made at version %s, booking now at %s",
            decision.action, decision.actor, made_at, self.s.version)
        await self._local(BookingActivities.record_workflow_event, EventRequest(
            booking_id=self.s.booking_id, event_type="manual_review.decision_dropped",
            context={"action": decision.action.value, "actor": decision.actor,
                     "made_at_version": made_at, "version": self.s.version,
                     "reason": "stale: made in an earlier round of manual review"},
        ))


def _parse(payload: Any) -> ManualReviewDecision:
    try:
        return parse_decision(payload)
    except InvalidDecision as err:
        raise ApplicationError(str(err), type="InvalidDecision", non_retryable=True) from None
