"""Starting GuestEmailWorkflow: one guest message sent after the booking's
workflow has closed (a late cancellation, an operator's resend).

While the booking workflow runs it sends its booking's messages itself. Once
it has closed, a message still to send (the cancellation of a confirmed
booking cancelled later, queued by the cancel's own transaction; a message
that failed and that an operator re-arms) is sent by a small Temporal
workflow that runs the same email activity on the same mail retry policy.
Durable: once started it outlives worker restarts and mail outages, like any
booking workflow. Exactly once: its id is derived from the booking and the
kind (a second start while it runs joins it), and the outbox claim sends a
row at most once whichever run gets there (a later run finds it sent).
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from seatflow.domain.messages import EmailRequest, EmailResult
from seatflow.domain.workflow_ids import booking_workflow_id, email_workflow_id
from seatflow.logging import get_logger

__all__ = ["EMAIL_WORKFLOW", "send_after_close", "start_guest_email"]

EMAIL_WORKFLOW = "GuestEmailWorkflow"
log = get_logger("seatflow.service")


async def start_guest_email(client: Client, booking_id: str, kind: str, *,
                            task_queue: str) -> WorkflowHandle[Any, EmailResult]:
    """Start (or join) the workflow that sends this booking's `kind` message."""
    return await client.start_workflow(
        EMAIL_WORKFLOW, EmailRequest(booking_id, kind=kind),
        id=email_workflow_id(booking_id, kind), task_queue=task_queue,
        result_type=EmailResult,
        # A run still going is joined; a closed one may run again (a resend):
        # the outbox claim never sends a row twice.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        # No guest name or address: Temporal stores these unencrypted.
        static_summary=f"{kind} message of booking {booking_id}",
    )


async def send_after_close(client: Client | None, booking_id: str, kind: str, *,
                           task_queue: str | None) -> bool:
    """After a change the closed booking workflow cannot act on (a cancel in
    the database): start the message's workflow on `task_queue`, or on the
    booking workflow's own queue when None. False when it could not be
    started (no client, Temporal unreachable): the row stays `pending` and
    `seatflow bookings resend-email ID --kind K` sends it (docs/runbook.md)."""
    if client is None:
        return False
    try:
        if task_queue is None:
            described = await client.get_workflow_handle(booking_workflow_id(booking_id)).describe()
            task_queue = described.task_queue
        await start_guest_email(client, booking_id, kind, task_queue=task_queue)
    except (RPCError, RuntimeError) as exc:
        log.warning("guest email not started", booking_id=booking_id, kind=kind,
                    error=f"{type(exc).__name__}: {exc}")
        return False
    return True
