"""Activities of the shadow workflow: read-only, except observability events.

The shadow worker registers these and nothing else, so the shadow cannot
allocate a table, move a state or send an email (DESIGN.md section 6). The
snapshot is read in a READ ONLY transaction, so PostgreSQL refuses any write
there too; the two writers insert into `observability_events` only.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seatflow.config import Settings
from seatflow.domain.planning import (
    AdjacencyMode,
    BookingRequest,
    EngineConfig,
    RestaurantSnapshot,
)
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.shadow import (
    COMPARISON_EVENT,
    ERROR_EVENT,
    EVENT_SOURCE,
    ShadowComparison,
    ShadowError,
    ShadowInput,
    ShadowSearch,
)
from seatflow.engine import search
from seatflow.storage.restaurants import (
    allocation_from_row,
    known_booking_from_row,
    load_policy,
    load_snapshot,
)
from seatflow.storage.transitions import record_event

LOOKAHEAD = timedelta(hours=3)  # as load_snapshot
UNSEATED_STATES = (
    "created", "capacity_verified", "assignment_pending", "assignment_in_progress",
    "manual_review",
)


class ShadowBookingNotFound(LookupError):
    pass


class ShadowActivities:
    """Given its dependencies once, at worker start (STYLE.md)."""

    def __init__(self, engine: AsyncEngine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.config = EngineConfig(
            max_tables=settings.max_tables,
            max_overage=settings.max_overage,
            adjacency_mode=AdjacencyMode(settings.adjacency_mode),
            repack_freeze_minutes=settings.repack_freeze_minutes,
        )

    @activity.defn(name="shadow_search")
    async def shadow_search(self, inp: ShadowInput) -> ShadowSearch:
        """Rebuild the floor the legacy path saw and ask the V3 engine for plans."""
        as_of = _parse_as_of(inp.booking_id, inp.as_of)
        async with self.engine.connect() as raw:
            conn = await read_only(raw)
            try:
                booking, snapshot, capacity_reason = await _snapshot_as_of(
                    conn, inp.booking_id, as_of
                )
            except ShadowBookingNotFound as exc:
                raise ApplicationError(
                    str(exc), type="ShadowBookingNotFound", non_retryable=True
                ) from exc
            finally:
                await conn.rollback()
        base = ShadowSearch(
            booking_id=inp.booking_id,
            restaurant_id=booking.restaurant_id,
            party_size=booking.party_size,
            as_of=as_of.isoformat(),
            allocations_seen=len(snapshot.allocations),
            max_attempts=self.settings.max_attempts,
        )
        if capacity_reason is not None:
            return dataclasses.replace(base, capacity_ok=False, reason=capacity_reason)
        request = BookingRequest(
            booking_id=inp.booking_id,
            party_size=booking.party_size,
            start=booking.start_at,
            end=booking.occupied_until,
            zone_preference=booking.zone_preference,
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
        async with self.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"{COMPARISON_EVENT}:{comparison.booking_id}"},
            )
            exists = (
                await conn.execute(
                    text(
                        "SELECT 1 FROM observability_events WHERE booking_id = CAST(:b AS uuid) "
                        "AND event_type = :t LIMIT 1"
                    ),
                    {"b": comparison.booking_id, "t": COMPARISON_EVENT},
                )
            ).first()
            if exists is not None:
                return False
            await record_event(
                conn,
                source=EVENT_SOURCE,
                event_type=COMPARISON_EVENT,
                context=comparison.context(),
                booking_id=comparison.booking_id,
                restaurant_id=comparison.restaurant_id or None,
            )
        return True

    @activity.defn(name="record_shadow_error")
    async def record_shadow_error(self, error: ShadowError) -> None:
        booking_id = error.booking_id if _is_uuid(error.booking_id) else None
        async with self.engine.begin() as conn:
            await record_event(
                conn,
                source=EVENT_SOURCE,
                event_type=ERROR_EVENT,
                context={
                    "booking_id": error.booking_id,
                    "stage": error.stage,
                    "error": error.error,
                    "error_type": error.error_type,
                    "legacy": {"outcome": error.legacy_outcome},
                },
                booking_id=booking_id,
                restaurant_id=error.restaurant_id or None,
            )

    def all(self) -> list[Callable[..., Any]]:
        return [self.shadow_search, self.record_shadow_comparison, self.record_shadow_error]


# ----------------------------------------------------------- the snapshot


async def read_only(conn: AsyncConnection) -> AsyncConnection:
    """One consistent, read-only transaction: PostgreSQL itself refuses writes."""
    return await conn.execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )


@dataclasses.dataclass(frozen=True)
class _BookingRow:
    restaurant_id: str
    party_size: int
    start_at: datetime
    occupied_until: datetime
    zone_preference: str | None


async def _snapshot_as_of(
    conn: AsyncConnection, booking_id: str, as_of: datetime
) -> tuple[_BookingRow, RestaurantSnapshot, str | None]:
    """The floor as the legacy path saw it at `as_of`, the booking's own allocation
    excluded: allocations created by then, and bookings then still unseated.

    Tables, zones and adjacency are today's: floor-plan edits since `as_of` are
    not versioned. Allocations deleted since (a cancellation, a re-packing move)
    are gone and their tables look free.
    """
    if not _is_uuid(booking_id):
        raise ShadowBookingNotFound(f"booking {booking_id!r} is not a booking id")
    row = (
        await conn.execute(
            text(
                "SELECT restaurant_id, party_size, start_at, occupied_until, zone_preference "
                "FROM bookings WHERE id = CAST(:id AS uuid)"
            ),
            {"id": booking_id},
        )
    ).one_or_none()
    if row is None:
        raise ShadowBookingNotFound(f"booking {booking_id} not found")
    booking = _BookingRow(
        row.restaurant_id, row.party_size, row.start_at, row.occupied_until, row.zone_preference
    )
    capacity_reason: str | None = None
    policy = await load_policy(conn, booking.restaurant_id)
    if policy is None:
        capacity_reason = f"invalid_booking: unknown restaurant {booking.restaurant_id!r}"
    else:
        try:
            # As V3's verification would have judged it then, not now.
            booking_window(policy, booking.party_size, booking.start_at, now=as_of)
        except InvalidBooking as exc:
            capacity_reason = f"invalid_booking: {exc.message}"

    floor = await load_snapshot(
        conn, booking.restaurant_id, booking.start_at, booking.occupied_until,
        exclude_booking=booking_id, lookahead=LOOKAHEAD,
    )
    lo, hi = booking.start_at - LOOKAHEAD, booking.occupied_until + LOOKAHEAD
    allocs = (
        await conn.execute(
            text(
                "SELECT al.booking_id::text AS booking_id, t.code, lower(al.occupied) AS s, "
                "upper(al.occupied) AS e, b.party_size, b.start_at "
                "FROM allocations al JOIN dining_tables t ON t.id = al.table_id "
                "JOIN bookings b ON b.id = al.booking_id "
                "WHERE al.restaurant_id = :r AND al.occupied && tstzrange(:lo, :hi, '[)') "
                "AND al.booking_id <> CAST(:id AS uuid) AND al.created_at <= :as_of "
                "ORDER BY t.code, lower(al.occupied)"
            ),
            {"r": booking.restaurant_id, "lo": lo, "hi": hi, "id": booking_id, "as_of": as_of},
        )
    ).all()
    known = (
        await conn.execute(
            text(
                "SELECT b.id::text AS id, b.party_size, b.start_at, b.occupied_until, "
                "b.zone_preference FROM bookings b "
                "WHERE b.restaurant_id = :r AND b.start_at >= :s AND b.start_at < :hi "
                "AND b.id <> CAST(:id AS uuid) AND b.created_at <= :as_of "
                "AND COALESCE((SELECT h.to_state FROM booking_assignment_state_history h "
                "  WHERE h.booking_id = b.id AND h.created_at <= :as_of "
                "  ORDER BY h.version DESC, h.id DESC LIMIT 1), 'created') = ANY(:unseated) "
                "AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.booking_id = b.id "
                "  AND a.created_at <= :as_of) "
                "ORDER BY b.start_at, b.id"
            ),
            {"r": booking.restaurant_id, "s": booking.start_at, "hi": hi, "id": booking_id,
             "as_of": as_of, "unseated": list(UNSEATED_STATES)},
        )
    ).all()
    snapshot = dataclasses.replace(
        floor,
        allocations=tuple(allocation_from_row(r) for r in allocs),
        known_bookings=tuple(known_booking_from_row(r) for r in known),
    )
    return booking, snapshot, capacity_reason


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


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
