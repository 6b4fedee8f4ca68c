"""Reading restaurants: the policy (services, turn times) and the floor snapshot."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from seatflow.domain.planning import (
    Allocation,
    KnownBooking,
    Mobility,
    RestaurantSnapshot,
    Table,
    TableStatus,
)
from seatflow.domain.restaurant import RestaurantPolicy, ServicePeriod, TurnBand
from seatflow.domain.states import UNSEATED
from seatflow.storage.db import Driver, statement
from seatflow.storage.demand import CACHE, cached_demand_sql, key_sql

UNSEATED_STATES = sorted(UNSEATED)  # a bound parameter, never a literal list

# Holds (`storage.holds`). A hold `h` is live, and its tables taken, while it
# has not expired or while the booking that claimed it awaits its tables
# (binds :unseated). An expired hold simply stops counting.
LIVE_HOLD = (
    "(h.expires_at > clock_timestamp() OR EXISTS (SELECT 1 FROM bookings hb "
    "WHERE hb.id = h.booking_id AND hb.assignment_state = ANY(CAST(:unseated AS text[]))))"
)
# The restaurant's holds gate: a hold grant takes it exclusively, every
# placement of tables shared (`placement.place`), so neither misses the other.
HOLDS_GATE = text("SELECT pg_advisory_xact_lock(hashtext('seatflow.holds:' || :r), 0)")
HOLDS_GATE_SHARED = statement(
    "SELECT pg_advisory_xact_lock_shared(hashtext('seatflow.holds:' || :r), 0)")
# Live holds as allocations of a pseudo booking `hold:<id>` placed by hand (so
# re-packing never moves one), in a snapshot's allocation columns; :exclude
# is a booking whose own hold is not counted against it.
HELD_ALLOCATIONS = (
    "SELECT 'hold:' || h.id::text AS booking_id, t.code, lower(h.occupied) AS s, "
    "upper(h.occupied) AS e, h.party_size, h.start_at, 'manual' AS assignment_strategy, "
    "NULL::text AS zone_preference, 0 AS times_moved "
    "FROM holds h JOIN dining_tables t ON t.id = ANY(h.table_ids) "
    "WHERE h.restaurant_id = {r} AND h.occupied && {span} "
    "AND h.booking_id IS DISTINCT FROM {exclude} AND " + LIVE_HOLD
)


def policy_sql(r: str) -> str:
    """A scalar subquery: the policy of restaurant `r` (an SQL expression) as
    one JSON array (null for an unknown restaurant), read by
    `policy_from_json`; verify reads it with the booking (one round trip)."""
    return (
        "(SELECT json_build_array(r.id, r.name, r.timezone, r.buffer_minutes, "
        " r.total_capacity, r.slot_minutes, "
        " (SELECT coalesce(json_agg(json_build_array(s.id, s.name, s.start_time, s.end_time, "
        "   t.max_party, t.minutes) ORDER BY s.start_time, s.id, t.max_party NULLS LAST), '[]') "
        "  FROM restaurant_services s LEFT JOIN service_turn_times t ON t.service_id = s.id "
        f"  WHERE s.restaurant_id = r.id)) FROM restaurants r WHERE r.id = {r})"
    )


POLICY = text("SELECT " + policy_sql(":id") + " AS policy")


def policy_from_json(value: Any) -> RestaurantPolicy | None:
    """The policy from `policy_sql`'s JSON."""
    value = _json(value)
    if value is None:
        return None
    rid, name, timezone, buffer_minutes, total_capacity, slot_minutes, services = value
    by_service: dict[int, tuple[str, str, str, list[TurnBand]]] = {}
    for sid, sname, start, end, max_party, minutes in services:
        entry = by_service.setdefault(sid, (sname, start, end, []))
        if minutes is not None:
            entry[3].append(TurnBand(max_party=max_party, minutes=minutes))
    periods = tuple(
        ServicePeriod(name=sname, start=time.fromisoformat(start), end=time.fromisoformat(end),
                      turn_times=tuple(bands))
        for sname, start, end, bands in by_service.values()
    )
    return RestaurantPolicy(
        id=rid,
        name=name,
        timezone=timezone,
        buffer_minutes=buffer_minutes,
        total_capacity=total_capacity,
        services=periods,
        slot_minutes=slot_minutes,
    )


async def load_policy(conn: AsyncConnection, restaurant_id: str) -> RestaurantPolicy | None:
    """The restaurant's policy (services, turn times), in one round trip."""
    return policy_from_json((await conn.execute(POLICY, {"id": restaurant_id})).scalar_one())


async def load_tables(conn: AsyncConnection, restaurant_id: str) -> tuple[Table, ...]:
    rows = (
        await conn.execute(
            text(
                "SELECT t.code, t.capacity, t.zone_id, t.min_party, t.max_party, t.mobility, "
                "t.category, t.active AND z.active AS active, t.status "
                "FROM dining_tables t JOIN zones z "
                "ON z.restaurant_id = t.restaurant_id AND z.id = t.zone_id "
                "WHERE t.restaurant_id = :id ORDER BY t.code"
            ),
            {"id": restaurant_id},
        )
    ).all()
    return tuple(
        Table(
            id=r.code,
            capacity=r.capacity,
            zone=r.zone_id,
            min_party=r.min_party,
            max_party=r.max_party,
            mobility=Mobility(r.mobility),
            category=r.category,
            active=bool(r.active),
            status=TableStatus(r.status),
        )
        for r in rows
    )


def snapshot_columns(r: str, lo: str, hi: str, start: str, exclude: str) -> str:
    """The floor snapshot as JSON columns of one SELECT: `tables`,
    `adjacency`, `allocs` (allocations and live holds over [lo, hi)), `known`
    (unseated bookings starting in [start, hi)), `tz`, `zones`, `zone_groups`
    and `demand` (with `demand_key`; binds :demand_known, see
    `storage.demand.ProfileCache`).
    Each argument is an SQL expression: the restaurant id, the bounds, and a
    booking id (uuid) left out of both lists. Read by `snapshot_from_json`;
    every snapshot the engine sees (an attempt's, availability's, a hold's,
    the shadow search's) is this one statement. Binds :unseated."""
    span = f"tstzrange({lo}, {hi}, '[)')"
    tz = f"(SELECT r.timezone FROM restaurants r WHERE r.id = {r})"
    return (
        " (SELECT coalesce(json_agg(json_build_array(t.code, t.capacity, t.zone_id, t.min_party, "
        "   t.max_party, t.mobility, t.category, t.active AND z.active, t.status) ORDER BY t.code), "
        "   '[]') FROM dining_tables t JOIN zones z ON z.restaurant_id = t.restaurant_id "
        f"   AND z.id = t.zone_id WHERE t.restaurant_id = {r}) AS tables, "
        " (SELECT coalesce(json_agg(json_build_array(ta.code, tb.code) ORDER BY ta.code, tb.code), "
        "   '[]') FROM table_adjacency e JOIN dining_tables ta ON ta.id = e.table_a "
        f"   JOIN dining_tables tb ON tb.id = e.table_b WHERE e.restaurant_id = {r}"
        " ) AS adjacency, "
        " (SELECT coalesce(json_agg(json_build_array(x.booking_id, x.code, x.s, x.e, "
        "   x.party_size, x.start_at, x.assignment_strategy, x.zone_preference, x.times_moved) "
        "   ORDER BY x.code, x.s), '[]') FROM ("
        "   SELECT al.booking_id::text AS booking_id, t.code, lower(al.occupied) AS s, "
        "   upper(al.occupied) AS e, ob.party_size, ob.start_at, ob.assignment_strategy, "
        "   ob.zone_preference, ob.times_moved "
        "   FROM allocations al JOIN dining_tables t ON t.id = al.table_id "
        "   JOIN bookings ob ON ob.id = al.booking_id "
        f"   WHERE al.restaurant_id = {r} AND al.occupied && {span} "
        f"   AND al.booking_id <> {exclude} "
        "   UNION ALL " + HELD_ALLOCATIONS.format(r=r, exclude=exclude, span=span) + ") x"
        " ) AS allocs, "
        " (SELECT coalesce(json_agg(json_build_array(k.id::text, k.party_size, k.start_at, "
        "   k.occupied_until, k.zone_preference) ORDER BY k.start_at, k.id), '[]') "
        f"   FROM bookings k WHERE k.restaurant_id = {r} AND k.start_at >= {start} "
        f"   AND k.start_at < {hi} "
        f"   AND k.assignment_state = ANY(CAST(:unseated AS text[])) AND k.id <> {exclude}"
        " ) AS known, "
        f" {tz} AS tz, "
        f" (SELECT r.zone_groups FROM restaurants r WHERE r.id = {r}) AS zone_groups, "
        " (SELECT coalesce(json_agg(zz.id ORDER BY zz.id), '[]') FROM zones zz "
        f"   WHERE zz.restaurant_id = {r} AND zz.active) AS zones, "
        + cached_demand_sql(r, tz, start) + " AS demand, "
        + key_sql(r, tz, start) + " AS demand_key"
    )


NO_BOOKING = "00000000-0000-0000-0000-000000000000"
SNAPSHOT = text(
    "SELECT " + snapshot_columns(":id", "CAST(:lo AS timestamptz)", "CAST(:hi AS timestamptz)",
                                 "CAST(:s AS timestamptz)", "CAST(:exclude AS uuid)")
)


async def load_snapshot(
    conn: AsyncConnection,
    restaurant_id: str,
    window_start: datetime,
    window_end: datetime,
    *,
    exclude_booking: str | None = None,
    lookahead: timedelta = timedelta(hours=3),
) -> RestaurantSnapshot:
    """Tables, adjacency, and allocations and unseated bookings near a window,
    in one round trip (`snapshot_columns`)."""
    row = (
        await conn.execute(
            SNAPSHOT,
            {"id": restaurant_id, "lo": window_start - lookahead,
             "hi": window_end + lookahead, "s": window_start, "unseated": UNSEATED_STATES,
             "exclude": exclude_booking or NO_BOOKING, "demand_known": CACHE.known()},
        )
    ).one()
    return snapshot_from_json(restaurant_id, row._mapping)


def allocation_from_row(r: Any) -> Allocation:
    """A row with booking_id, code, s, e, party_size, start_at (and, when
    selected, assignment_strategy, zone_preference and times_moved)."""
    return Allocation(
        booking_id=r.booking_id, table_id=r.code, start=r.s, end=r.e,
        party_size=r.party_size, booking_start=r.start_at,
        assignment_strategy=getattr(r, "assignment_strategy", None),
        zone_preference=getattr(r, "zone_preference", None),
        times_moved=getattr(r, "times_moved", 0) or 0,
    )


def known_booking_from_row(r: Any) -> KnownBooking:
    """A row with id, party_size, start_at, occupied_until, zone_preference."""
    return KnownBooking(
        booking_id=r.id, party_size=r.party_size, start=r.start_at,
        end=r.occupied_until, zone_preference=r.zone_preference,
    )


# ---------------------------------------------------------------------------
# The attempt's read: the booking (locked) and its floor snapshot in ONE round
# trip. Each part of the snapshot comes back as a JSON array (decoded in C by
# asyncpg's json codec -> Python's json module), so a busy worker pays one
# network wait per attempt instead of six.

ATTEMPT_INPUTS = statement(
    "WITH b AS (SELECT id, restaurant_id, party_size, start_at, occupied_until, "
    "  zone_preference, assignment_state, assignment_state_version, guest_name, guest_email "
    "  FROM bookings WHERE id = CAST(:id AS uuid) FOR UPDATE), "
    "sl AS MATERIALIZED (SELECT (SELECT s FROM generate_series(1, CAST(:n AS integer)) AS s "
    "  WHERE pg_try_advisory_xact_lock(hashtext('seatflow.slot:' || b.restaurant_id), s) "
    "  LIMIT 1) AS slot FROM b) "
    "SELECT b.restaurant_id, b.party_size, b.start_at, b.occupied_until, b.zone_preference, "
    " b.assignment_state, b.assignment_state_version, b.guest_name, b.guest_email, "
    " clock_timestamp() AS as_of, sl.slot, "
    # with a slot, the holds gate shared too (`place` then takes it no more)
    " (SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared("
    "   hashtext('seatflow.holds:' || b.restaurant_id), 0) WHERE sl.slot IS NOT NULL) g"
    " ) > 0 AS gated, "
    # the tables of the booking's own hold: the plan its attempt tries first
    " (SELECT coalesce(json_agg(t.code ORDER BY t.code), '[]') FROM holds h "
    "   JOIN dining_tables t ON t.id = ANY(h.table_ids) WHERE h.booking_id = b.id) AS held, "
    + snapshot_columns("b.restaurant_id", "b.start_at - make_interval(secs => :look)",
                       "b.occupied_until + make_interval(secs => :look)", "b.start_at", "b.id")
    + " FROM b, sl"
)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# The floor's parts as the last snapshots read them, per value: a floor
# changes rarely, and every attempt at a restaurant read the same tables and
# adjacency into new objects (about half of decoding a snapshot; issue 27).
# The same value gives the same (immutable) objects, which the engine's plan
# cache then compares by identity (`engine.exact_problem._FloorKey`).
_FLOOR_PARTS: dict[tuple[Any, ...], Any] = {}
_FLOOR_PARTS_KEPT = 256  # a bound: a few per restaurant
T = TypeVar("T")


def _floor_part(kind: str, raw: list[list[Any]], make: Callable[[list[list[Any]]], T]) -> T:
    key = (kind, *map(tuple, raw))
    part: T | None = _FLOOR_PARTS.get(key)
    if part is None:
        if len(_FLOOR_PARTS) >= _FLOOR_PARTS_KEPT:
            _FLOOR_PARTS.clear()
        part = _FLOOR_PARTS[key] = make(raw)
    return part


def _tables(raw: Any) -> tuple[Table, ...]:
    return tuple(
        Table(id=c, capacity=cap, zone=z, min_party=lo, max_party=hi,
              mobility=Mobility(mob), category=cat, active=bool(act), status=TableStatus(st))
        for c, cap, z, lo, hi, mob, cat, act, st in raw)


def _adjacency(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, b in raw)


def snapshot_from_json(restaurant_id: str, row: Mapping[Any, Any]) -> RestaurantSnapshot:
    """The snapshot from the JSON columns of `snapshot_columns` (`row`: an
    asyncpg Record, or a SQLAlchemy row's `_mapping`)."""
    return RestaurantSnapshot(
        restaurant_id=restaurant_id,
        tables=_floor_part("tables", _json(row["tables"]), _tables),
        adjacency=_floor_part("adjacency", _json(row["adjacency"]), _adjacency),
        allocations=tuple(
            Allocation(booking_id=bid, table_id=code, start=_ts(s), end=_ts(e),
                       party_size=p, booking_start=_ts(bs), assignment_strategy=strategy,
                       zone_preference=zone, times_moved=moved)
            for bid, code, s, e, p, bs, strategy, zone, moved in _json(row["allocs"])
        ),
        known_bookings=tuple(
            KnownBooking(booking_id=bid, party_size=p, start=_ts(s), end=_ts(e),
                         zone_preference=zp)
            for bid, p, s, e, zp in _json(row["known"])
        ),
        zones_active=tuple(_json(row["zones"])),
        timezone=row["tz"],
        demand=CACHE.profile(row["demand_key"], row["demand"]),
        zone_groups=tuple(tuple(group) for group in (_json(row["zone_groups"]) or ())),
    )


async def take_holds_gate_shared(conn: Driver, restaurant_id: str) -> None:
    """The restaurant's holds gate, shared, for the rest of the transaction."""
    await HOLDS_GATE_SHARED.run(conn, r=restaurant_id)


async def load_attempt_inputs(
    conn: Driver, booking_id: str, max_parallel: int,
    lookahead: timedelta = timedelta(hours=3),
) -> Any:
    """Lock the booking row, try to take a restaurant slot (see
    `storage.slots`) and read the floor snapshot, in one statement. Returns
    the row (an asyncpg Record; None when the booking does not exist);
    `row["slot"]` is None when every slot is taken. With a slot it takes the
    restaurant's holds gate shared as well (`row["gated"]`: one round trip
    less in `placement.place`)."""
    return await ATTEMPT_INPUTS.row(
        conn, id=booking_id, n=max_parallel, look=lookahead.total_seconds(),
        unseated=UNSEATED_STATES, demand_known=CACHE.known())


async def snapshot_time(conn: AsyncConnection) -> datetime:
    """The database clock: when a snapshot read on `conn` was taken."""
    value: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    return value
