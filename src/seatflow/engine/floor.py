"""A read-only index over one restaurant snapshot, built once per search.

Everything the search asks repeatedly (which tables are usable, which are busy
in a window, who neighbours whom) is answered from here in O(1) or O(allocations
on one table), and every collection is ordered by table id so that no result
depends on set or dict iteration order of the caller's inputs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, tzinfo

from seatflow.domain.localtime import local_time
from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    EngineConfig,
    Mobility,
    RestaurantSnapshot,
    Table,
)

# The default configuration (frozen, so one shared instance is safe as a default).
DEFAULT_CONFIG = EngineConfig()


def floor_clock(snapshot: RestaurantSnapshot) -> tzinfo | None:
    """The tzinfo of the snapshot's allocations (UTC when read from
    PostgreSQL), None without any. Datetimes on one tzinfo compare by their
    fields; across two, every comparison asks both for their UTC offset, so
    the searches bring what they are asked onto this clock first."""
    return snapshot.allocations[0].start.tzinfo if snapshot.allocations else None


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open windows [a_start, a_end) and [b_start, b_end) intersect."""
    return a_start < b_end and b_start < a_end


class Floor:
    """Tables, adjacency and allocations of one snapshot, indexed for the search."""

    def __init__(self, snapshot: RestaurantSnapshot) -> None:
        self.snapshot = snapshot
        self.tables: dict[str, Table] = {}
        for table in snapshot.tables:
            # A duplicated id keeps its first definition; ids are unique in practice.
            self.tables.setdefault(table.id, table)
        self.order: tuple[str, ...] = tuple(sorted(self.tables))
        self.bit: dict[str, int] = {table_id: 1 << i for i, table_id in enumerate(self.order)}
        neighbours: dict[str, set[str]] = {table_id: set() for table_id in self.order}
        for a, b in snapshot.adjacency:
            if a != b and a in neighbours and b in neighbours:
                neighbours[a].add(b)
                neighbours[b].add(a)
        self.neighbours: dict[str, frozenset[str]] = {
            table_id: frozenset(found) for table_id, found in neighbours.items()
        }
        active_zones = set(snapshot.zones_active)
        self.usable: tuple[str, ...] = tuple(
            table_id
            for table_id in self.order
            if self.tables[table_id].in_service
            and (not active_zones or self.tables[table_id].zone in active_zones)
        )
        by_table: dict[str, list[Allocation]] = {}
        for allocation in snapshot.allocations:
            by_table.setdefault(allocation.table_id, []).append(allocation)
        self.allocations_by_table = by_table

    def zone_active(self, zone: str) -> bool:
        active = self.snapshot.zones_active
        return not active or zone in active

    def busy_tables(
        self,
        start: datetime,
        end: datetime,
        ignore_bookings: Collection[str] = (),
    ) -> set[str]:
        """Tables holding an allocation that overlaps [start, end)."""
        busy: set[str] = set()
        for allocation in self.snapshot.allocations:
            if allocation.start < end and start < allocation.end:
                if allocation.booking_id in ignore_bookings:
                    continue
                busy.add(allocation.table_id)
        return busy

    def free_tables(
        self,
        start: datetime,
        end: datetime,
        ignore_bookings: Collection[str] = (),
    ) -> tuple[str, ...]:
        """Usable tables with no overlapping allocation, in id order."""
        busy = self.busy_tables(start, end, ignore_bookings)
        return tuple(table_id for table_id in self.usable if table_id not in busy)

    def mask(self, table_ids: Iterable[str]) -> int:
        bits = 0
        for table_id in table_ids:
            bits |= self.bit[table_id]
        return bits

    def combinable(self, table_id: str) -> bool:
        return self.tables[table_id].mobility == Mobility.MOVABLE


def clock_span(floor: Floor, start: datetime, end: datetime) -> str:
    """`19:00-21:05 Europe/Paris`: a window on the restaurant's clock, its zone
    named (reasons are read by operators, in the restaurant's time)."""
    tz = floor.snapshot.timezone
    return f"{local_time(start, tz, '%H:%M', named=False)}-{local_time(end, tz, '%H:%M')}"


def taken_reason(floor: Floor, request: BookingRequest) -> str:
    """Why a party that fits the floor is refused: every fitting table is taken."""
    return f"all fitting tables are taken {clock_span(floor, request.start, request.end)}"
