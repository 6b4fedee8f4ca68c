"""The demand profile storage computes from a restaurant's past requests
(storage/demand.py), on real PostgreSQL: what the engine's lookahead placement
keeps tables free for."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.planning import DemandProfile
from seatflow.storage import demand
from seatflow.storage.db import driver
from seatflow.storage.restaurants import load_attempt_inputs, load_snapshot, snapshot_from_json
from tests.support import floorplan, import_plan, insert_raw_booking


async def load_demand(conn: Any, restaurant_id: str, day_of: datetime) -> DemandProfile | None:
    """The profile computed by `demand_sql` alone, past any cache: the
    reference every snapshot read must carry."""
    from sqlalchemy import text

    sql = demand.demand_sql(
        ":id", "(SELECT timezone FROM restaurants WHERE id = :id)", "CAST(:day_of AS timestamptz)")
    value = (await conn.execute(text(f"SELECT {sql}"),
                                {"id": restaurant_id, "day_of": day_of})).scalar_one()
    return demand.profile_from_json(value)


async def _booking(engine: AsyncEngine, rid: str, party: int, start: datetime) -> str:
    return await insert_raw_booking(
        engine, restaurant_id=rid, party_size=party, start=start,
        end=start + timedelta(minutes=90), occupied_until=start + timedelta(minutes=95),
    )


async def test_the_profile_counts_past_requests_by_slot_and_party_per_day(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"dp-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    day = datetime(2031, 3, 20, tzinfo=UTC)
    at = lambda days, h, m: day - timedelta(days=days) + timedelta(hours=h, minutes=m)
    for when, party in [
        (at(1, 19, 0), 2), (at(1, 19, 10), 2), (at(1, 20, 0), 6),  # yesterday
        (at(3, 19, 5), 2),  # three days ago
        (at(40, 19, 0), 8),  # before the history: left out
    ]:
        await _booking(db_engine, rid, party, when)
    today = await _booking(db_engine, rid, 4, day + timedelta(hours=19))  # the day itself: out

    async with db_engine.connect() as conn:
        profile = await load_demand(conn, rid, day + timedelta(hours=19))
        snapshot = await load_snapshot(
            conn, rid, day + timedelta(hours=19), day + timedelta(hours=21))
        row = await load_attempt_inputs(await driver(conn), today, max_parallel=4)
    assert profile is not None
    # two days with requests: 3 parties of 2 in the 19:00 slot, one 6 at 20:00
    assert profile.rates == ((19 * 60, 2, 1.5), (20 * 60, 6, 0.5))
    assert profile.durations == ((2, 95), (6, 95))
    assert profile.slot_minutes == 15
    # every snapshot carries it: the attempt's one-statement read and load_snapshot
    assert snapshot.demand == profile
    assert snapshot_from_json(rid, row).demand == profile


async def test_a_restaurant_without_history_has_no_profile(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"dp-new-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    day = datetime(2031, 3, 20, 19, tzinfo=UTC)
    booking = await _booking(db_engine, rid, 2, day)
    async with db_engine.connect() as conn:
        assert await load_demand(conn, rid, day) is None
        row = await load_attempt_inputs(await driver(conn), booking, max_parallel=4)
    assert snapshot_from_json(rid, row).demand is None


async def test_a_process_computes_a_restaurant_days_profile_once_until_it_goes_stale(
    db_engine: AsyncEngine, unique_id: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PostgreSQL skips the 28-day subquery for the (restaurant, local day)
    # profiles the process holds (storage.demand.ProfileCache): a past day
    # changed since shows only once the entry is stale; another day is its own.
    rid = f"dp-cache-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    day = datetime(2031, 3, 20, tzinfo=UTC)
    await _booking(db_engine, rid, 2, day - timedelta(days=1) + timedelta(hours=19))
    at = day + timedelta(hours=19)
    window = (at, at + timedelta(hours=2))

    async def read(when: datetime = at) -> Any:
        async with db_engine.connect() as conn:
            return (await load_snapshot(conn, rid, when, when + timedelta(hours=2))).demand

    first = await read()
    assert first is not None and first.rates == ((19 * 60, 2, 1.0),)
    await _booking(db_engine, rid, 6, day - timedelta(days=2) + timedelta(hours=20))
    assert await read() == first  # held: not computed again
    assert demand.CACHE.profile(f"{rid} 2031-03-20", demand.CACHED) == first
    other_day = await read(window[0] + timedelta(days=1))  # its own key, computed
    assert other_day is not None and len(other_day.rates) == 2
    later = time.monotonic() + demand.CACHE_SECONDS + 1
    monkeypatch.setattr(demand, "time", SimpleNamespace(monotonic=lambda: later))
    fresh = await read()  # stale: computed again, with the new past booking
    assert fresh is not None and fresh.rates == ((19 * 60, 2, 0.5), (20 * 60, 6, 0.5))
