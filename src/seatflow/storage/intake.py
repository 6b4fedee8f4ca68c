"""The intake outbox: bookings whose workflow has not been started yet.

A booking and its `intake_outbox` row are written in one transaction
(`storage.bookings.insert_booking`); `mark_intake_started` closes the row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.storage.transitions import BookingNotFound


@dataclass(frozen=True)
class PendingIntake:
    booking_id: str
    restaurant_id: str
    party_size: int
    start: datetime


async def pending_intake(
    engine: AsyncEngine,
    *,
    limit: int = 100,
    min_age_seconds: float = 0.0,
    restaurant_ids: Collection[str] | None = None,
) -> list[PendingIntake]:
    """Bookings whose workflow has not been started, oldest first, at least
    `min_age_seconds` old; only those of `restaurant_ids` when given."""
    scope = "AND b.restaurant_id = ANY(:restaurants) " if restaurant_ids else ""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.booking_id::text AS booking_id, b.restaurant_id, b.party_size, "
                "b.start_at FROM intake_outbox o JOIN bookings b ON b.id = o.booking_id "
                "WHERE o.started_at IS NULL "
                "AND o.created_at <= clock_timestamp() - make_interval(secs => :age) "
                f"{scope}ORDER BY o.created_at LIMIT :limit"
            ),
            {"age": min_age_seconds, "limit": limit,
             **({"restaurants": list(restaurant_ids)} if restaurant_ids else {})},
        )
        return [PendingIntake(r.booking_id, r.restaurant_id, r.party_size, r.start_at)
                for r in rows]


async def intake_details(engine: AsyncEngine, booking_id: str) -> PendingIntake:
    """What the booking's workflow is started with, as stored (the start in
    UTC). Raises BookingNotFound."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            text("SELECT restaurant_id, party_size, start_at FROM bookings "
                 "WHERE id = CAST(:id AS uuid)"), {"id": booking_id},
        )).one_or_none()
    if row is None:
        raise BookingNotFound(booking_id)
    return PendingIntake(booking_id, row.restaurant_id, row.party_size, row.start_at)
