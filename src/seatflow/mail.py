"""Sending the confirmation email exactly once per booking.

The confirm transaction enqueues one `email_outbox` row per booking and kind
(unique key). Sending locks that row, skips it when already sent (counting a
suppressed duplicate), hands the message to the transport, and marks it sent
in the same transaction. The file transport names each message after its
booking and kind, so even a crash between writing and marking leaves exactly
one message in the mailbox. SMTP cannot offer that (a crash after the server
accepted the message and before the commit re-sends it): it is at-least-once
by nature, and the outbox keeps that window to one message per crash.
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.messages import EmailResult


class MailTransport(Protocol):
    def deliver(self, key: str, message: EmailMessage) -> str: ...


class FileMailbox:
    """One `.eml` file per message under a directory (default var/mailbox/)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def deliver(self, key: str, message: EmailMessage) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{key}.eml"
        tmp = self.directory / f".{key}.eml.tmp-{os.getpid()}"
        tmp.write_bytes(bytes(message))
        os.replace(tmp, final)  # atomic: the same key never yields two messages
        return str(final)


class SmtpTransport:
    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port

    def deliver(self, key: str, message: EmailMessage) -> str:
        message["Message-ID"] = f"<{key}@seatflow>"
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)
        return f"smtp://{self.host}:{self.port}/{key}"


async def send_outbox_email(
    engine: AsyncEngine, transport: MailTransport, booking_id: str, kind: str, sender: str
) -> EmailResult:
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id, recipient, subject, body, status FROM email_outbox "
                    "WHERE booking_id = CAST(:id AS uuid) AND kind = :kind FOR UPDATE"
                ),
                {"id": booking_id, "kind": kind},
            )
        ).one_or_none()
        if row is None:
            return EmailResult(sent=False, duplicate=False, path=None)
        if row.status == "pending" and kind == "confirmation":
            state = (await conn.execute(
                text("SELECT assignment_state FROM bookings WHERE id = CAST(:id AS uuid)"),
                {"id": booking_id},
            )).scalar()
            if state != "confirmed":
                # Cancelled (or moved on) before the send: never confirm a
                # booking that no longer holds its tables. The row stays
                # pending and is never sent (cancellation is final).
                return EmailResult(sent=False, duplicate=False, path=None)
        if row.status == "sent":
            await conn.execute(
                text("UPDATE email_outbox SET duplicates_suppressed = duplicates_suppressed + 1 "
                     "WHERE id = :id"),
                {"id": row.id},
            )
            return EmailResult(sent=False, duplicate=True)
        message = EmailMessage()
        message["From"] = sender
        message["To"] = row.recipient or "guest@example.invalid"
        message["Subject"] = row.subject
        message["X-Seatflow-Booking"] = booking_id
        message.set_content(row.body)
        path = transport.deliver(f"{booking_id}-{kind}", message)
        await conn.execute(
            text("UPDATE email_outbox SET status = 'sent', sent_at = clock_timestamp(), "
                 "send_attempts = send_attempts + 1 WHERE id = :id"),
            {"id": row.id},
        )
        return EmailResult(sent=True, duplicate=False, path=path)
