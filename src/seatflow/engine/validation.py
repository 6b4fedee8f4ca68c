"""`validate_plan`: is this operator-chosen table set a valid plan, and if not, why.

The manual-review assign path uses it. An operator may override, with an
explicit force, the overage limit (and a table's min party), the zone rule
(tables of different zones joined) and the adjacency rule (tables that do not
touch, or more than `max_tables`), but never table existence, a table that is
inactive, out of service or in an inactive zone, capacity, a table's max
party, joining fixed tables, or overlapping allocations.
"""

from __future__ import annotations

from collections.abc import Sequence

from seatflow.domain.planning import BookingRequest, EngineConfig, Mobility, RestaurantSnapshot

from .combinations import is_connected, mode_accepts
from .floor import DEFAULT_CONFIG, Floor, clock_span

# Ends the reason of a plan that `force` would seat (the front doors offer the override).
FORCE_HINT = "(an operator may override this with --force)"


def validate_plan(
    snapshot: RestaurantSnapshot,
    request: BookingRequest,
    tables: Sequence[str],
    config: EngineConfig = DEFAULT_CONFIG,
    *,
    allow_overage_override: bool = False,
    allow_zone_override: bool = False,
    allow_adjacency_override: bool = False,
) -> str | None:
    """None when `tables` is a valid plan for `request`, else a reason a person can act on."""
    floor = Floor(snapshot)
    return plan_problem(
        floor,
        request,
        tables,
        config,
        allow_overage_override=allow_overage_override,
        allow_zone_override=allow_zone_override,
        allow_adjacency_override=allow_adjacency_override,
    )


def operator_plan_problem(
    snapshot: RestaurantSnapshot,
    request: BookingRequest,
    tables: Sequence[str],
    config: EngineConfig = DEFAULT_CONFIG,
    *,
    force: bool = False,
) -> tuple[str | None, str | None]:
    """An operator's plan, checked like any plan: (why it is refused, None), or
    (None, the rule `force` overrode, if any). `force` overrides the overage,
    zone and adjacency rules; never capacity, fixed tables, or a taken or
    inactive table."""
    strict = validate_plan(snapshot, request, tables, config)
    if strict is None:
        return None, None
    forced = validate_plan(snapshot, request, tables, config, allow_overage_override=True,
                           allow_zone_override=True, allow_adjacency_override=True)
    if forced is not None:
        return forced, None
    if not force:
        return f"{strict} {FORCE_HINT}", None
    return None, strict


def plan_problem(
    floor: Floor,
    request: BookingRequest,
    tables: Sequence[str],
    config: EngineConfig,
    *,
    allow_overage_override: bool = False,
    allow_zone_override: bool = False,
    allow_adjacency_override: bool = False,
    ignore_bookings: Sequence[str] = (),
) -> str | None:
    booking = request.booking_id
    party = request.party_size
    ids = list(tables)
    if party < 1:
        return f"booking {booking}: party size must be at least 1, got {party}"
    if not ids:
        return f"booking {booking}: no tables given"
    if len(set(ids)) != len(ids):
        return f"booking {booking}: a table is named twice in {', '.join(ids)}"
    for table_id in ids:
        if table_id not in floor.tables:
            return f"booking {booking}: table {table_id} does not exist in restaurant {floor.snapshot.restaurant_id}"
    chosen = [floor.tables[t] for t in sorted(ids)]
    for table in chosen:
        if not table.active:
            return f"booking {booking}: table {table.id} is not active"
        if not table.in_service:
            return f"booking {booking}: table {table.id} is out of service"
        if not floor.zone_active(table.zone):
            return f"booking {booking}: table {table.id} is in inactive zone {table.zone}"
    ignored = {booking, *ignore_bookings}
    for table in chosen:
        for allocation in floor.allocations_by_table.get(table.id, ()):
            if allocation.booking_id in ignored:
                continue
            if allocation.start < request.end and request.start < allocation.end:
                return (
                    f"booking {booking}: table {table.id} is taken "
                    f"{clock_span(floor, allocation.start, allocation.end)} by booking "
                    f"{allocation.booking_id}"
                )
    capacity = sum(table.capacity for table in chosen)
    if capacity < party:
        return f"booking {booking}: {capacity} seats cannot hold a party of {party}"
    if len(chosen) == 1:
        table = chosen[0]
        if table.max_party is not None and party > table.max_party:
            return f"booking {booking}: table {table.id} takes at most {table.max_party} guests"
        if not allow_overage_override and party < table.min_party:
            return (
                f"booking {booking}: table {table.id} needs a party of at least {table.min_party}"
            )
    if not allow_overage_override and capacity - party > config.max_overage:
        return (
            f"booking {booking}: {capacity} seats for a party of {party} leaves "
            f"{capacity - party} empty, more than the allowed {config.max_overage}"
        )
    if len(chosen) > 1:
        fixed = [table.id for table in chosen if table.mobility != Mobility.MOVABLE]
        if fixed:
            return f"booking {booking}: fixed tables cannot be joined: {', '.join(fixed)}"
        if not allow_adjacency_override and len(chosen) > config.max_tables:
            return f"booking {booking}: {len(chosen)} tables is more than the allowed {config.max_tables}"
        zones = sorted({table.zone for table in chosen})
        if not allow_zone_override and len(zones) > 1:
            return (
                f"booking {booking}: tables in different zones cannot be joined: {', '.join(zones)}"
            )
        sorted_ids = [table.id for table in chosen]
        if allow_adjacency_override:
            return None
        if not is_connected(sorted_ids, floor.neighbours) or not mode_accepts(
            sorted_ids, floor.neighbours, config.adjacency_mode
        ):
            return (
                f"booking {booking}: tables {', '.join(sorted_ids)} are not adjacent "
                f"({config.adjacency_mode.value})"
            )
    return None
