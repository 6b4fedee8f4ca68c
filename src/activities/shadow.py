"""Activities of the shadow workflow: read-only, except observability events.

The shadow worker registers these and nothing else, so the shadow cannot
allocate a table, move a state or send an email (docs/architecture.md, guarantees). The
snapshot is read in a READ ONLY transaction, so PostgreSQL refuses any write
there too; the two writers insert into `observability_events` only. Their SQL
lives in `seatflow.storage.shadow`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seatflow.config import Settings
from seatflow.domain.planning import BookingRequest
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.shadow import (
    ShadowComparison,
    ShadowError,
    ShadowFloor,
    ShadowInput,
    ShadowSearch,
)
from seatflow.engine import search
from seatflow.storage.shadow import (
    ShadowBookingNotFound,
    load_floor_as_of,
    record_comparison_once,
    record_error,
)


class ShadowActivities:
    """Given its dependencies once, at worker start."""

    def __init__(self, engine: AsyncEngine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.config = settings.engine_config()

    @activity.defn(name="shadow_search")
    async def shadow_search(self, inp: ShadowInput) -> ShadowSearch:
        """Rebuild the floor the legacy path saw and ask the V3 engine for plans."""
        as_of = _parse_as_of(inp.booking_id, inp.as_of)
        try:
            floor = await load_floor_as_of(self.engine, inp.booking_id, as_of)
        except ShadowBookingNotFound as exc:
            raise ApplicationError(
                str(exc), type="ShadowBookingNotFound", non_retryable=True
            ) from exc
        capacity_reason = _capacity_reason(floor, as_of)
        snapshot = floor.snapshot
        base = ShadowSearch(
            booking_id=inp.booking_id,
            restaurant_id=floor.restaurant_id,
            party_size=floor.party_size,
            as_of=as_of.isoformat(),
            allocations_seen=len(snapshot.allocations),
            max_attempts=self.settings.max_attempts,
        )
        if capacity_reason is not None:
            return dataclasses.replace(base, capacity_ok=False, reason=capacity_reason)
        request = BookingRequest(
            booking_id=inp.booking_id,
            party_size=floor.party_size,
            start=floor.start,
            end=floor.end,
            zone_preference=floor.zone_preference,
        )
        result = search(snapshot, request, self.config, now=as_of)
        best = result.plans[0] if result.plans else None
        return dataclasses.replace(
            base,
            tables=best.tables if best else (),
            strategy=best.strategy if best else None,
            reason=result.reason,
            moves=result.moves,
            plans_found=len(result.plans),
            evaluated=result.evaluated,
        )

    @activity.defn(name="record_shadow_comparison")
    async def record_shadow_comparison(self, comparison: ShadowComparison) -> bool:
        """Write the one comparison event of a booking; False when it already exists.

        A retried activity or a re-run child finds the first event and writes
        nothing: the advisory lock serialises concurrent writers of one booking.
        """
        return await record_comparison_once(self.engine, comparison)

    @activity.defn(name="record_shadow_error")
    async def record_shadow_error(self, error: ShadowError) -> None:
        await record_error(self.engine, error)

    def all(self) -> list[Callable[..., Any]]:
        return [self.shadow_search, self.record_shadow_comparison, self.record_shadow_error]


def _capacity_reason(floor: ShadowFloor, as_of: datetime) -> str | None:
    """Why V3's verification would have failed the booking then (not now), or None."""
    if floor.policy is None:
        return f"invalid_booking: unknown restaurant {floor.restaurant_id!r}"
    try:
        booking_window(floor.policy, floor.party_size, floor.start, now=as_of)
    except InvalidBooking as exc:
        return f"invalid_booking: {exc.message}"
    return None


def _parse_as_of(booking_id: str, value: str) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApplicationError(
            f"booking {booking_id}: as_of {value!r} is not an ISO 8601 timestamp",
            type="InvalidShadowInput", non_retryable=True,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
