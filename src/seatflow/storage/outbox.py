"""The email outbox's three writes (see `seatflow.mail` for the protocol):
claim a row, then mark it sent, failed, or pending again. Each is one short
transaction; the mail server is never called inside one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.mail import EMAIL_CLAIM_LEASE, Claim, NothingToSend
from seatflow.storage.transitions import record_event, write_breaker_state

if TYPE_CHECKING:
    from seatflow.breaker import BreakerEvent


class EmailInFlight(Exception):
    """Another attempt claimed this email moments ago and may still be sending it."""

    def __init__(self, booking_id: str, kind: str, wait_seconds: float):
        super().__init__(f"{kind} email of booking {booking_id} is being sent by another attempt")
        self.wait_seconds = wait_seconds


@dataclass(frozen=True)
class BreakerWrite:
    """A circuit breaker's state and pending events, written with the mark."""

    name: str
    state: str
    failures: int
    events: Iterable[BreakerEvent] = field(default_factory=tuple)


async def claim_email(
    engine: AsyncEngine, booking_id: str, kind: str, *, lease: timedelta = EMAIL_CLAIM_LEASE
) -> Claim | NothingToSend:
    """Lock the row; a Claim to deliver (the row is now `sending`, committed),
    or why there is nothing to send. Raises EmailInFlight when a claim younger
    than `lease` holds it."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id, recipient, subject, body, html, ics, status, delivery_failures, "
                    "last_error, "
                    "claimed_at > clock_timestamp() - make_interval(secs => :lease) AS fresh, "
                    "EXTRACT(EPOCH FROM claimed_at + make_interval(secs => :lease) "
                    "- clock_timestamp()) AS wait FROM email_outbox "
                    "WHERE booking_id = CAST(:id AS uuid) AND kind = :kind FOR UPDATE"
                ),
                {"id": booking_id, "kind": kind, "lease": lease.total_seconds()},
            )
        ).one_or_none()
        if row is None:
            return NothingToSend()
        if row.status == "pending" and kind == "confirmation":
            state = (await conn.execute(
                text("SELECT assignment_state FROM bookings WHERE id = CAST(:id AS uuid)"),
                {"id": booking_id},
            )).scalar()
            if state != "confirmed":
                # Cancelled (or moved on) before the send: never confirm a
                # booking that no longer holds its tables. The row stays
                # pending and is never sent (cancellation is final).
                return NothingToSend()
        if row.status == "sent":
            await conn.execute(
                text("UPDATE email_outbox SET duplicates_suppressed = duplicates_suppressed + 1 "
                     "WHERE id = :id"),
                {"id": row.id},
            )
            return NothingToSend(duplicate=True)
        if row.status == "failed":
            return NothingToSend(failed=True, reason=row.last_error)
        if row.status == "sending" and row.fresh:
            raise EmailInFlight(booking_id, kind, max(1.0, float(row.wait or 0)))
        # A stale claim's attempt may have delivered before it died: counted as
        # a possible duplicate, which `seatflow report` shows.
        await conn.execute(
            text("UPDATE email_outbox SET status = 'sending', claimed_at = clock_timestamp(), "
                 "send_attempts = send_attempts + CASE WHEN status = 'sending' THEN 1 ELSE 0 END "
                 "WHERE id = :id"),
            {"id": row.id},
        )
        return Claim(row.id, booking_id, kind, row.recipient, row.subject, row.body,
                     int(row.delivery_failures) + 1, html=row.html, ics=row.ics)


async def _breaker(conn: AsyncConnection, breaker: BreakerWrite | None) -> None:
    if breaker is not None:
        await write_breaker_state(conn, source="mail", name=breaker.name, state=breaker.state,
                                  failures=breaker.failures, events=breaker.events)


async def mark_email_sent(
    engine: AsyncEngine, claim: Claim, *, breaker: BreakerWrite | None = None
) -> None:
    async with engine.begin() as conn:
        await _breaker(conn, breaker)
        await conn.execute(
            text("UPDATE email_outbox SET status = 'sent', sent_at = clock_timestamp(), "
                 "send_attempts = send_attempts + 1, last_error = NULL WHERE id = :id"),
            {"id": claim.outbox_id},
        )


async def mark_email_failed(
    engine: AsyncEngine, claim: Claim, reason: str, *, permanent: bool,
    breaker: BreakerWrite | None = None,
) -> None:
    """Given up: the row is `failed` for good, with an `email.failed` event."""
    async with engine.begin() as conn:
        await _breaker(conn, breaker)
        await conn.execute(
            text("UPDATE email_outbox SET status = 'failed', failed_at = clock_timestamp(), "
                 "delivery_failures = delivery_failures + 1, last_error = :e WHERE id = :id"),
            {"id": claim.outbox_id, "e": reason[:500]},
        )
        await record_event(
            conn, booking_id=claim.booking_id, source="mail", event_type="email.failed",
            context={"kind": claim.kind, "reason": reason[:500], "attempts": claim.attempts,
                     "permanent": permanent},
        )


async def mark_email_pending(
    engine: AsyncEngine, claim: Claim, reason: str, *, breaker: BreakerWrite | None = None
) -> None:
    """A transient failure: back to `pending` with the (redacted) error, to retry."""
    async with engine.begin() as conn:
        await _breaker(conn, breaker)
        await conn.execute(
            text("UPDATE email_outbox SET status = 'pending', claimed_at = NULL, last_error = :e, "
                 "delivery_failures = delivery_failures + 1 WHERE id = :id"),
            {"id": claim.outbox_id, "e": reason[:500]},
        )
