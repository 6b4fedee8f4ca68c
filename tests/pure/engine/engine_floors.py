"""Small builders for engine tests: floors, allocations and bookings in a few words."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    KnownBooking,
    Mobility,
    RestaurantSnapshot,
    Table,
)

EVENING = datetime(2026, 6, 12, 19, 0, tzinfo=UTC)


def examples(full: int) -> int:
    """How many examples a property draws: all of them in `make test`, a
    twentieth (at least 10) in the fast tier (`make test-fast` sets
    SEATFLOW_FAST_TESTS=1), which is for a first answer in seconds."""
    return max(10, full // 20) if os.environ.get("SEATFLOW_FAST_TESTS") == "1" else full


def at(minutes: int) -> datetime:
    """A time `minutes` after 19:00."""
    return EVENING + timedelta(minutes=minutes)


def table(
    table_id: str,
    capacity: int,
    zone: str = "main",
    *,
    fixed: bool = False,
    min_party: int = 1,
    max_party: int | None = None,
) -> Table:
    return Table(
        id=table_id,
        capacity=capacity,
        zone=zone,
        min_party=min_party,
        max_party=max_party,
        mobility=Mobility.FIXED if fixed else Mobility.MOVABLE,
    )


def floor(
    *tables: Table,
    edges: tuple[tuple[str, str], ...] = (),
    allocations: tuple[Allocation, ...] = (),
    known: tuple[KnownBooking, ...] = (),
    zones_active: tuple[str, ...] = (),
) -> RestaurantSnapshot:
    return RestaurantSnapshot(
        restaurant_id="harbour-kitchen",
        tables=tables,
        adjacency=edges,
        allocations=allocations,
        known_bookings=known,
        zones_active=zones_active,
    )


def booking(
    party: int, start: int = 0, minutes: int = 120, zone: str | None = None, booking_id: str = "new"
) -> BookingRequest:
    return BookingRequest(
        booking_id=booking_id,
        party_size=party,
        start=at(start),
        end=at(start + minutes),
        zone_preference=zone,
    )


def held(
    booking_id: str, table_id: str, start: int, minutes: int = 120, party: int = 2
) -> Allocation:
    return Allocation(
        booking_id=booking_id,
        table_id=table_id,
        start=at(start),
        end=at(start + minutes),
        party_size=party,
        booking_start=at(start),
    )
