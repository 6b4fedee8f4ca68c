"""Cancellation: the `cancel_booking` signal is honoured between any two
steps of the workflow, from any state but failed and cancelled. A malformed
payload is logged and ignored; an error while applying the cancel is logged
and the workflow carries on (the booking stays as it is). Since the patch
`cancellation-message`, a cancel applied here sends the guest's cancellation
message before the workflow closes."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.booking import BookingActivities
    from seatflow.domain.messages import CancelRequest, TransitionResult
    from seatflow.domain.review import InvalidDecision, parse_cancel
    from seatflow.domain.states import AssignmentState
    from workflows.booking.core import WorkflowCore, cause_message


class Cancellation(WorkflowCore):
    @workflow.signal(name="cancel_booking")
    def cancel_booking(self, payload: Any = None) -> None:
        try:
            self._cancel_requested = parse_cancel(payload)
        except InvalidDecision as err:
            workflow.logger.warning("ignoring cancel_booking signal: %s", err)

    async def _cancel(self) -> bool:
        """Apply the requested cancel; False when it could not be applied (the
        error is logged and the workflow carries on)."""
        actor, reason = self._cancel_requested or (None, None)
        async with self._lock:
            try:
                result: TransitionResult = await self._local(
                    BookingActivities.cancel_booking,
                    CancelRequest(self.s.booking_id, self.s.version, actor=actor, reason=reason),
                )
            except ActivityError as err:
                workflow.logger.error("cancel not applied: %s", cause_message(err))
                self._cancel_requested = None
                return False
            self.s.tables = ()
            self._apply(result.state, result.version, reason or "booking cancelled")
            self._publish()
        if self._cancellation_message and self.s.state == AssignmentState.CANCELLED:
            await self._tell_guests_after_cancel()
        return True

    async def _tell_guests_after_cancel(self) -> None:
        """The guests the cancelled booking's confirm moved are still told (their
        move stands), then the guest gets the cancellation message the cancel
        queued (none was queued unless the guest has an address and had been
        confirmed: the send then finds nothing)."""
        for moved in self._notify:
            await self._send_email(moved, "table_changed")
        self._notify = ()
        await self._send_email(self.s.booking_id, "cancellation")
