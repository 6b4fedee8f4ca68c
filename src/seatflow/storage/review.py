"""The manual-review queue as operators see it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.assignment import AttemptOutcome
from seatflow.domain.review import ReviewItem
from seatflow.domain.states import AWAITING_OPERATOR


async def manual_review_queue(
    engine: AsyncEngine, restaurant: str | None = None
) -> list[ReviewItem]:
    """Bookings waiting for an operator (`AWAITING_OPERATOR`), earliest start first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT b.id::text AS id, b.restaurant_id, b.party_size, b.start_at, "
                    "b.last_reason, (SELECT count(*) FROM booking_assignment_attempts a "
                    "WHERE a.booking_id = b.id AND a.result <> :confirmed) AS attempts, "
                    "(SELECT max(h.created_at) FROM booking_assignment_state_history h "
                    "WHERE h.booking_id = b.id AND h.to_state = ANY(:waiting)) AS since "
                    "FROM bookings b WHERE b.assignment_state = ANY(:waiting) "
                    "AND (CAST(:r AS text) IS NULL OR b.restaurant_id = :r) "
                    "ORDER BY b.start_at, b.id"
                ),
                {"r": restaurant, "confirmed": AttemptOutcome.CONFIRMED.value,
                 "waiting": sorted(state.value for state in AWAITING_OPERATOR)},
            )
        ).all()
    return [
        ReviewItem(booking_id=r.id, restaurant_id=r.restaurant_id, party_size=r.party_size,
                   start=r.start_at, attempts=int(r.attempts), last_reason=r.last_reason,
                   since=r.since)
        for r in rows
    ]
