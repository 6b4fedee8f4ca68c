"""What a guest's email says, and the email outbox's claim protocol (pure).

The email activity bounds itself: after `Settings.mail_max_attempts` real
delivery attempts that failed transiently it records `email.failed` and
returns, so the workflow's retry policy may stay unlimited (a database outage
while recording must still be retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# A claim older than this is taken to be from a dead attempt and sent again.
EMAIL_CLAIM_LEASE = timedelta(seconds=90)


@dataclass(frozen=True)
class Claim:
    """An outbox email claimed for sending (its row is `sending`)."""

    outbox_id: int
    booking_id: str
    kind: str
    recipient: str | None
    subject: str
    body: str
    attempts: int  # delivery attempts, this one included (failed ones before it + 1)


@dataclass(frozen=True)
class NothingToSend:
    """Why a claim found nothing to send: no row (or a confirmation whose
    booking is no longer confirmed), already sent (`duplicate`, counted as a
    suppressed duplicate), or already given up (`failed`, with its reason)."""

    duplicate: bool = False
    failed: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class EmailBooking:
    """What a guest's email says about their booking (never more: the body is
    stored in the outbox and the guest's address travels apart from it)."""

    booking_id: str
    restaurant_id: str
    party_size: int
    start: datetime
    guest_name: str | None = None


def confirmation_email(booking: EmailBooking, tables: tuple[str, ...]) -> tuple[str, str]:
    """Subject and body of the booking's confirmation."""
    name = booking.guest_name or "guest"
    subject = f"Your table for {booking.party_size} is confirmed"
    body = (
        f"Hello {name},\n\nYour booking {booking.booking_id} for a party of "
        f"{booking.party_size} at {booking.restaurant_id} on {booking.start.isoformat()} "
        f"is confirmed.\nTable(s): {', '.join(tables)}\n\nSee you soon.\n"
    )
    return subject, body


def table_changed_email(booking: EmailBooking, tables: tuple[str, ...]) -> tuple[str, str]:
    """Subject and body telling a guest already confirmed that re-packing moved
    them to other tables."""
    name = booking.guest_name or "guest"
    subject = f"Your table for {booking.party_size} has changed"
    body = (
        f"Hello {name},\n\nYour booking {booking.booking_id} for a party of "
        f"{booking.party_size} at {booking.restaurant_id} on {booking.start.isoformat()} "
        f"is still confirmed, at a different table.\nTable(s): {', '.join(tables)}\n\n"
        "See you soon.\n"
    )
    return subject, body
