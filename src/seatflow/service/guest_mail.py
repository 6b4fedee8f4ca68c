"""An operator's resend of a guest message that failed (`seatflow bookings
resend-email`, `POST /v1/bookings/{id}/emails/resend`): re-armed in the outbox,
then sent for real by GuestEmailWorkflow (`service.mail_workflow`), since the
booking's own workflow has closed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.domain.workflow_ids import email_workflow_id
from seatflow.service.bookings import BookingActionRefused
from seatflow.service.mail_workflow import start_guest_email
from seatflow.storage.outbox import KIND_STATE, KINDS, rearm_email

__all__ = ["ResentEmail", "resend_email"]


@dataclass(frozen=True)
class ResentEmail:
    booking_id: str
    kind: str
    workflow_id: str
    # sent | failed | sending (not finished within the wait: it goes on) |
    # not_sent (the claim found nothing to send; `reason` says why)
    outcome: str
    reason: str | None = None


async def resend_email(
    engine: AsyncEngine, client: Client, booking_id: str, kind: str = "confirmation", *,
    actor: str, task_queue: str, wait_seconds: float = 15.0,
) -> ResentEmail:
    """Send a booking's `kind` message again, for real: a `failed` one is
    re-armed (fresh tries, an `email.resend` event naming `actor`) and sent by
    GuestEmailWorkflow; a `pending` one whose workflow closed is sent the same
    way. Waits up to `wait_seconds` for the outcome. Raises BookingNotFound,
    BookingActionRefused: `invalid_kind`, `no_email` (none of that kind),
    `already_sent`, `no_address`, `withdrawn`, `not_sendable` (the booking is
    no longer in the state the message speaks of)."""
    if kind not in KINDS:
        raise BookingActionRefused(
            f"unknown message kind {kind!r} (one of {', '.join(KINDS)})", code="invalid_kind")
    row = await rearm_email(engine, booking_id, kind, actor=actor)
    if row is None:
        raise BookingActionRefused(f"booking {booking_id} has no {kind} message",
                                   code="no_email")
    refusal = {
        "sent": ("already_sent", "was already sent"),
        "no_address": ("no_address", "has no guest address: nothing can be sent"),
        "withdrawn": ("withdrawn", f"was withdrawn ({row.last_error})"),
    }.get(row.status)
    if refusal is not None:
        raise BookingActionRefused(f"the {kind} message of booking {booking_id} {refusal[1]}",
                                   code=refusal[0])
    if row.booking_state != KIND_STATE[kind]:
        raise BookingActionRefused(
            f"booking {booking_id} is {row.booking_state}: its {kind} message is not sent",
            code="not_sendable")
    handle = await start_guest_email(client, booking_id, kind, task_queue=task_queue)
    workflow_id = email_workflow_id(booking_id, kind)
    try:
        result = await asyncio.wait_for(handle.result(), timeout=wait_seconds)
    except TimeoutError:
        return ResentEmail(booking_id, kind, workflow_id, "sending",
                           "still being sent (the mail server may be slow or down); "
                           "it retries by itself")
    if result.sent or result.duplicate:
        return ResentEmail(booking_id, kind, workflow_id, "sent")
    if result.failed:
        return ResentEmail(booking_id, kind, workflow_id, "failed", result.reason)
    return ResentEmail(booking_id, kind, workflow_id, "not_sent", result.reason)
