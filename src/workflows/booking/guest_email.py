"""GuestEmailWorkflow: one guest message sent durably when no booking
workflow is there to send it.

The booking workflow sends a booking's messages while it runs. Two messages
come after it has closed: the cancellation of a booking cancelled later (the
service cancels it in the database, in the transaction that queues the
message), and an operator's resend of a message that failed. For those the
service starts this workflow, whose id is derived from the booking and the
kind (`guest-email-{booking}-{kind}`): a second start while it runs joins
it, and a later run (another resend) finds a message already sent and sends
nothing (the outbox claim). It runs the booking workflow's own email activity
on the same mail retry policy, so a mail server down for a while delays the
message instead of losing it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seatflow.domain.messages import EmailRequest, EmailResult
    from workflows.booking.core import WorkflowCore


@workflow.defn(name="GuestEmailWorkflow")
class GuestEmailWorkflow(WorkflowCore):
    @workflow.run
    async def run(self, req: EmailRequest) -> EmailResult:
        return await self._send_email(req.booking_id, req.kind)
