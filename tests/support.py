"""Test helpers: small floor plans, booking creation, database reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain import states as domain_states
from seatflow.domain.intake import NewBooking
from seatflow.floorplan import parse_floorplan
from seatflow.storage.floorplans import import_floorplan
from seatflow.storage.intake import insert_booking_once

TURN_TIMES = [
    {"max_party": 2, "minutes": 90},
    {"max_party": 4, "minutes": 105},
    {"max_party": None, "minutes": 120},
]


def floorplan(
    restaurant_id: str,
    tables: list[dict[str, Any]],
    adjacency: list[list[str]] | None = None,
    zones: list[str] | None = None,
) -> dict[str, Any]:
    zone_ids = zones or sorted({t.get("zone", "main") for t in tables})
    return {
        "restaurant": {
            "id": restaurant_id,
            "name": f"Test {restaurant_id}",
            "timezone": "UTC",
            "buffer_minutes": 5,
            # All-day service, so tests can book any time in the future.
            "services": [{"name": "all-day", "start": "00:00", "end": "23:59",
                          "turn_times": TURN_TIMES}],
        },
        "zones": [{"id": z, "name": z.title()} for z in zone_ids],
        "tables": [{"zone": "main", **t} for t in tables],
        "adjacency": adjacency or [],
    }


async def import_plan(engine: AsyncEngine, data: dict[str, Any]) -> None:
    await import_floorplan(engine, parse_floorplan(data))


def slot(days: int = 2, hour: int = 19, minute: int = 0) -> datetime:
    base = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return base + timedelta(days=days)


async def insert_booking(engine: AsyncEngine, new: NewBooking, *, now: datetime) -> str:
    """The booking's id, inserted with its intake row as the service does
    (`insert_booking_once`), without starting its workflow."""
    booking_id, _created = await insert_booking_once(engine, new, now=now)
    return booking_id


async def new_booking(
    engine: AsyncEngine, restaurant_id: str, party: int, start: datetime | None = None,
    zone: str | None = None, email: str | None = None,
) -> str:
    return await insert_booking(
        engine,
        NewBooking(restaurant_id=restaurant_id, party_size=party, start=start or slot(),
                   zone_preference=zone, guest_name="Test Guest",
                   guest_email=email or f"guest-{uuid.uuid4().hex[:6]}@example.com"),
        now=datetime.now(UTC),
    )


async def insert_raw_booking(
    engine: AsyncEngine,
    *,
    restaurant_id: str,
    party_size: int,
    start: datetime,
    end: datetime,
    occupied_until: datetime,
    booking_id: str | None = None,
    zone_preference: str | None = None,
) -> str:
    """Insert a booking without validation: for tests of invalid bookings that
    reach the workflow some other way (a host application, an old row)."""
    booking_id = booking_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                "occupied_until, zone_preference) VALUES (CAST(:id AS uuid), :r, :p, :s, :e, :o, :z)"
            ),
            {"id": booking_id, "r": restaurant_id, "p": party_size, "s": start, "e": end,
             "o": occupied_until, "z": zone_preference},
        )
    return booking_id


async def fetch(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def booking_tables(engine: AsyncEngine, booking_id: str) -> list[str]:
    rows = await fetch(
        engine,
        "SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
        "WHERE a.booking_id = CAST(:id AS uuid) ORDER BY t.code",
        id=booking_id,
    )
    return [r[0] for r in rows]


async def double_booked_minutes(engine: AsyncEngine, restaurant_id: str) -> float:
    value = await scalar(
        engine,
        "SELECT COALESCE(sum(EXTRACT(EPOCH FROM (LEAST(upper(a.occupied), upper(b.occupied)) - "
        "GREATEST(lower(a.occupied), lower(b.occupied)))) / 60), 0) FROM allocations a "
        "JOIN allocations b ON a.table_id = b.table_id AND a.id < b.id "
        "AND a.occupied && b.occupied WHERE a.restaurant_id = :r",
        r=restaurant_id,
    )
    return float(value)


async def wait_for_state(engine: AsyncEngine, booking_id: str, wanted: set[str] | str,
                         timeout: float = 60.0) -> str:
    """Poll the database until the booking reaches one of `wanted` (or time runs out)."""
    import asyncio

    targets = {wanted} if isinstance(wanted, str) else wanted
    state = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        state = await scalar(engine, "SELECT assignment_state FROM bookings WHERE id = "
                             "CAST(:id AS uuid)", id=booking_id)
        if state in targets:
            return str(state)
        await asyncio.sleep(0.05)
    return str(state)


SETTLED = {s.value for s in domain_states.SETTLED}


HISTORIES = __import__("pathlib").Path(__file__).resolve().parent / "histories"


async def save_history(handle: Any, name: str) -> None:
    """Record a workflow path for the replay test, when SEATFLOW_RECORD_HISTORIES=1.

    Run `SEATFLOW_RECORD_HISTORIES=1 make test` after a deliberate workflow
    change (with `workflow.patched` where running workflows must keep going)
    and commit the new files under tests/histories/.
    """
    import os

    if os.environ.get("SEATFLOW_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def listed(client: Any, query: str, expected: str, timeout: float = 20) -> list[str]:
    """The workflow ids Temporal's visibility store lists for `query`, once
    they include `expected` (visibility indexes a change a moment after the
    workflow makes it, longer on a busy box), or when `timeout` runs out."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ids = [wf.id async for wf in client.list_workflows(query)]
        if expected in ids or asyncio.get_running_loop().time() >= deadline:
            return ids
        await asyncio.sleep(0.2)
