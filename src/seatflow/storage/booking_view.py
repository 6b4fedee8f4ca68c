"""The booking read model: one booking with its tables, attempts, state
history and guest messages (the confirmation, and every message by kind), for
operators (`seatflow bookings show`, the HTTP API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.storage.transitions import BookingNotFound


async def load_booking_view(engine: AsyncEngine, booking_id: str) -> dict[str, Any]:
    """Everything stored about a booking that an operator needs to answer "why
    is booking X not confirmed?", as plain JSON values (ISO 8601 times): the
    contract of `bookings show --json`. Tables in code order. Raises
    BookingNotFound."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id::text AS id, restaurant_id, party_size, start_at, end_at, "
                    "occupied_until, status, assignment_state, assignment_state_version, "
                    "assignment_strategy, assignment_pipeline, last_reason, zone_preference, "
                    "created_at, confirmed_at, (SELECT timezone FROM restaurants r WHERE "
                    "r.id = bookings.restaurant_id) AS timezone FROM bookings "
                    "WHERE id = CAST(:id AS uuid)"
                ),
                {"id": booking_id},
            )
        ).one_or_none()
        if row is None:
            raise BookingNotFound(booking_id)
        tables = (
            await conn.execute(
                text(
                    "SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
                    "WHERE a.booking_id = CAST(:id AS uuid) ORDER BY t.code"
                ),
                {"id": booking_id},
            )
        ).scalars().all()
        attempts = (
            await conn.execute(
                text(
                    "SELECT attempt_no, pipeline, result, reason, strategy, plans_tried, "
                    "permit_wait_ms, created_at FROM booking_assignment_attempts "
                    "WHERE booking_id = CAST(:id AS uuid) ORDER BY created_at, attempt_no"
                ),
                {"id": booking_id},
            )
        ).all()
        history = (
            await conn.execute(
                text(
                    "SELECT from_state, to_state, version, reason, actor, created_at "
                    "FROM booking_assignment_state_history WHERE booking_id = CAST(:id AS uuid) "
                    "ORDER BY id"
                ),
                {"id": booking_id},
            )
        ).all()
        # A row without an address is never sent: it reads `no_address` even
        # before a send marks it so.
        messages = (
            await conn.execute(
                text(
                    "SELECT kind, CASE WHEN recipient IS NULL OR recipient = '' "
                    "THEN 'no_address' ELSE status END AS status, sent_at, "
                    "duplicates_suppressed, last_error FROM email_outbox "
                    "WHERE booking_id = CAST(:id AS uuid) ORDER BY id"
                ),
                {"id": booking_id},
            )
        ).all()
    email = next((m for m in messages if m.kind == "confirmation"), None)
    sent = email is not None and email.status == "sent"
    return {
        "booking_id": row.id,
        "restaurant_id": row.restaurant_id,
        "timezone": row.timezone,
        "party_size": row.party_size,
        "start": row.start_at.isoformat(),
        "end": row.end_at.isoformat(),
        "occupied_until": row.occupied_until.isoformat(),
        "zone_preference": row.zone_preference,
        "status": row.status,
        "assignment_state": row.assignment_state,
        "assignment_state_version": row.assignment_state_version,
        "assignment_strategy": row.assignment_strategy,
        "assignment_pipeline": row.assignment_pipeline,
        "last_reason": row.last_reason,
        "created_at": row.created_at.isoformat(),
        "confirmed_at": row.confirmed_at.isoformat() if row.confirmed_at else None,
        "tables": list(tables),
        "attempts": [
            {"attempt_no": a.attempt_no, "pipeline": a.pipeline, "result": a.result,
             "reason": a.reason, "strategy": a.strategy,
             "plans_tried": a.plans_tried, "permit_wait_ms": a.permit_wait_ms,
             "at": a.created_at.isoformat()}
            for a in attempts
        ],
        "history": [
            {"from": h.from_state, "to": h.to_state, "version": h.version, "reason": h.reason,
             "actor": h.actor, "at": h.created_at.isoformat()}
            for h in history
        ],
        "email": {
            "sent": sent,
            "count": 1 if sent else 0,
            "sent_at": email.sent_at.isoformat() if email is not None and email.sent_at else None,
            "duplicates_suppressed": email.duplicates_suppressed if email is not None else 0,
            "status": email.status if email is not None else None,
            "error": email.last_error if email is not None else None,  # redacted
        },
        "messages": [
            {"kind": m.kind, "status": m.status,
             "sent_at": m.sent_at.isoformat() if m.sent_at else None, "error": m.last_error}
            for m in messages
        ],
    }
