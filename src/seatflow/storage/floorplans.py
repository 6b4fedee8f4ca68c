"""Floor plans in PostgreSQL: the all-or-nothing import of a plan, a stored
restaurant read back as a plan, and the restaurant listing. The file format and
its validation are `seatflow.floorplan` (pure: no database)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from seatflow.floorplan import FloorPlan, TableSpec
from seatflow.storage.db import session_factory
from seatflow.storage.schema import (
    DiningTable,
    Restaurant,
    Service,
    TableAdjacency,
    TurnTime,
    Zone,
)

# ---------------------------------------------------------------- importing


@dataclass(frozen=True)
class ImportSummary:
    restaurant_id: str
    restaurant_created: bool
    services: int
    zones: int
    zones_deactivated: int
    tables_created: int
    tables_updated: int
    tables_unchanged: int
    tables_deactivated: int
    edges: int
    total_capacity: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TABLE_FIELDS = (
    "capacity",
    "min_party",
    "max_party",
    "zone_id",
    "mobility",
    "category",
    "active",
    "status",
)


def _table_row(table: TableSpec) -> dict[str, Any]:
    return {
        "capacity": table.capacity,
        "min_party": table.min_party,
        "max_party": table.max_party,
        "zone_id": table.zone,
        "mobility": table.mobility,
        "category": table.category,
        "active": table.active,
        "status": table.status,
    }


async def import_floorplan(engine: AsyncEngine, plan: FloorPlan) -> ImportSummary:
    """Create or update one restaurant from `plan` in a single transaction.

    Tables are matched by code and keep their surrogate ids (allocations
    reference them); tables missing from the plan become inactive rather than
    deleted. Services, turn times and adjacency are replaced. Importing the
    same plan twice changes nothing the second time.
    """
    async with session_factory(engine)() as session, session.begin():
        return await _import(session, plan)


async def _import(session: AsyncSession, plan: FloorPlan) -> ImportSummary:
    spec = plan.restaurant
    rid = spec.id
    # The upsert locks the restaurant row, so concurrent imports of one
    # restaurant run one after the other.
    upsert = insert(Restaurant).values(
        id=rid,
        name=spec.name,
        timezone=spec.timezone,
        buffer_minutes=spec.buffer_minutes,
        slot_minutes=spec.slot_minutes,
        total_capacity=plan.total_capacity,
        promises_tables=plan.promises_tables,
        zone_groups=plan.zone_groups,
    )
    upserted = upsert.on_conflict_do_update(
        index_elements=[Restaurant.id],
        set_={
            "name": spec.name,
            "timezone": spec.timezone,
            "buffer_minutes": spec.buffer_minutes,
            "slot_minutes": spec.slot_minutes,
            "total_capacity": plan.total_capacity,
            "promises_tables": plan.promises_tables,
            "zone_groups": plan.zone_groups,
            "updated_at": func.now(),
        },
    ).returning(Restaurant.created_at == Restaurant.updated_at)
    created = bool((await session.execute(upserted)).scalar_one())

    await session.execute(delete(Service).where(Service.restaurant_id == rid))
    for service in spec.services:
        service_id = (
            await session.execute(
                insert(Service)
                .values(
                    restaurant_id=rid,
                    name=service.name,
                    start_time=service.start,
                    end_time=service.end,
                )
                .returning(Service.id)
            )
        ).scalar_one()
        await session.execute(
            insert(TurnTime),
            [
                {"service_id": service_id, "max_party": band.max_party, "minutes": band.minutes}
                for band in service.turn_times
            ],
        )

    for zone in plan.zones:
        stmt = insert(Zone).values(
            restaurant_id=rid, id=zone.id, name=zone.name, active=zone.active
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Zone.restaurant_id, Zone.id],
                set_={"name": zone.name, "active": zone.active},
            )
        )
    zone_ids = [z.id for z in plan.zones]
    zones_deactivated = len(
        (
            await session.execute(
                update(Zone)
                .where(Zone.restaurant_id == rid, Zone.id.not_in(zone_ids), Zone.active)
                .values(active=False)
                .returning(Zone.id)
            )
        ).all()
    )

    existing = {
        row.code: row
        for row in (
            await session.execute(
                select(DiningTable).where(DiningTable.restaurant_id == rid).with_for_update()
            )
        ).scalars()
    }
    ids: dict[str, int] = {}
    tables_created = tables_updated = tables_unchanged = 0
    for table in plan.tables:
        values = _table_row(table)
        current = existing.get(table.id)
        if current is None:
            ids[table.id] = (
                await session.execute(
                    insert(DiningTable)
                    .values(restaurant_id=rid, code=table.id, **values)
                    .returning(DiningTable.id)
                )
            ).scalar_one()
            tables_created += 1
            continue
        ids[table.id] = current.id
        if all(getattr(current, name) == values[name] for name in _TABLE_FIELDS):
            tables_unchanged += 1
        else:
            await session.execute(
                update(DiningTable).where(DiningTable.id == current.id).values(**values)
            )
            tables_updated += 1
    missing = [row.id for code, row in existing.items() if code not in ids and row.active]
    if missing:
        await session.execute(
            update(DiningTable).where(DiningTable.id.in_(missing)).values(active=False)
        )

    await session.execute(delete(TableAdjacency).where(TableAdjacency.restaurant_id == rid))
    edges = sorted({(min(ids[a], ids[b]), max(ids[a], ids[b])) for a, b in plan.edges})
    if edges:
        await session.execute(
            insert(TableAdjacency),
            [{"restaurant_id": rid, "table_a": a, "table_b": b} for a, b in edges],
        )

    return ImportSummary(
        restaurant_id=rid,
        restaurant_created=created,
        services=len(spec.services),
        zones=len(plan.zones),
        zones_deactivated=zones_deactivated,
        tables_created=tables_created,
        tables_updated=tables_updated,
        tables_unchanged=tables_unchanged,
        tables_deactivated=len(missing),
        edges=len(edges),
        total_capacity=plan.total_capacity,
    )


# ---------------------------------------------------------------- reading back


@dataclass(frozen=True)
class RestaurantListing:
    id: str
    name: str
    timezone: str
    zones: int
    tables: int  # active tables
    total_capacity: int


async def list_restaurants(engine: AsyncEngine) -> list[RestaurantListing]:
    active_tables = (
        select(func.count())
        .where(DiningTable.restaurant_id == Restaurant.id, DiningTable.active)
        .scalar_subquery()
    )
    zones = select(func.count()).where(Zone.restaurant_id == Restaurant.id).scalar_subquery()
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(
                Restaurant.id,
                Restaurant.name,
                Restaurant.timezone,
                zones,
                active_tables,
                Restaurant.total_capacity,
            ).order_by(Restaurant.id)
        )
        return [RestaurantListing(*row) for row in rows]


async def export_floorplan(engine: AsyncEngine, restaurant_id: str) -> FloorPlan | None:
    """The stored restaurant as a floor plan (re-importable); None when unknown.

    Deactivated tables and zones are included with `active: false`.
    """
    async with session_factory(engine)() as session:
        restaurant = await session.get(Restaurant, restaurant_id)
        if restaurant is None:
            return None
        services = (
            (
                await session.execute(
                    select(Service)
                    .where(Service.restaurant_id == restaurant_id)
                    .order_by(Service.start_time)
                )
            )
            .scalars()
            .all()
        )
        bands = (
            (
                await session.execute(
                    select(TurnTime)
                    .where(TurnTime.service_id.in_([s.id for s in services]))
                    .order_by(TurnTime.max_party.asc().nulls_last())
                )
            )
            .scalars()
            .all()
        )
        zones = (
            (
                await session.execute(
                    select(Zone).where(Zone.restaurant_id == restaurant_id).order_by(Zone.id)
                )
            )
            .scalars()
            .all()
        )
        tables = (
            (
                await session.execute(
                    select(DiningTable)
                    .where(DiningTable.restaurant_id == restaurant_id)
                    .order_by(DiningTable.id)
                )
            )
            .scalars()
            .all()
        )
        edges = (
            (
                await session.execute(
                    select(TableAdjacency).where(TableAdjacency.restaurant_id == restaurant_id)
                )
            )
            .scalars()
            .all()
        )
    code = {t.id: t.code for t in tables}
    return FloorPlan.model_validate(
        {
            "restaurant": {
                "id": restaurant.id,
                "name": restaurant.name,
                "timezone": restaurant.timezone,
                "buffer_minutes": restaurant.buffer_minutes,
                "slot_minutes": restaurant.slot_minutes,
                "services": [
                    {
                        "name": s.name,
                        "start": s.start_time,
                        "end": s.end_time,
                        "turn_times": [
                            {"max_party": b.max_party, "minutes": b.minutes}
                            for b in bands
                            if b.service_id == s.id
                        ],
                    }
                    for s in services
                ],
            },
            "zones": [{"id": z.id, "name": z.name, "active": z.active} for z in zones],
            "tables": [
                {
                    "id": t.code,
                    "capacity": t.capacity,
                    "min_party": t.min_party,
                    "max_party": t.max_party,
                    "zone": t.zone_id,
                    "mobility": t.mobility,
                    "category": t.category,
                    "active": t.active,
                    "status": t.status,
                }
                for t in tables
            ],
            "adjacency": sorted(sorted([code[e.table_a], code[e.table_b]]) for e in edges),
            "promises_tables": restaurant.promises_tables,
            "equivalent_zones": restaurant.zone_groups,
        }
    )
