"""Read-only measurements over bookings, permits and emails: what the load test,
the pipeline bench, the demo and the worker's state gauge report.

Each function takes booking or restaurant ids and returns plain values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.figures import EmailOutboxFigures


async def latency_percentiles(engine: AsyncEngine, ids: list[str]) -> dict[str, float | None]:
    """created -> confirmed over the given bookings (nearest-rank-free: percentile_cont)."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY x) AS p95, "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY x) AS p99, max(x) AS max "
            "FROM (SELECT EXTRACT(EPOCH FROM confirmed_at - created_at) AS x FROM bookings "
            "WHERE id = ANY(CAST(:ids AS uuid[])) AND confirmed_at IS NOT NULL) l"),
            {"ids": ids})).one()
    return {k: None if v is None else round(float(v), 3)
            for k, v in (("p50", row.p50), ("p95", row.p95), ("p99", row.p99),
                         ("max", row.max))}


async def confirm_latencies(engine: AsyncEngine, ids: list[str]) -> list[float]:
    """created -> confirmed in seconds, one value per confirmed booking of `ids`."""
    if not ids:
        return []
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM confirmed_at - created_at) FROM bookings "
            "WHERE id = ANY(CAST(:ids AS uuid[])) AND confirmed_at IS NOT NULL"),
            {"ids": list(ids)})).scalars().all()
    return [float(x) for x in rows]


async def slot_figures(engine: AsyncEngine, ids: list[str]) -> dict[str, dict[str, float | None]]:
    """The restaurant slots these bookings took: how long each waited for one
    and how long it held it (from acquire to release), P50 and P95 in ms."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_ms) AS w50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms) AS w95, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY h) AS h50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY h) AS h95 FROM ("
            "SELECT wait_ms, EXTRACT(EPOCH FROM released_at - acquired_at) * 1000 AS h "
            "FROM permit_intervals WHERE booking_id = ANY(CAST(:ids AS uuid[]))) x"),
            {"ids": ids})).one()

    def ms(v: Any) -> float | None:
        return None if v is None else round(float(v), 3)

    return {"wait_ms": {"p50": ms(row.w50), "p95": ms(row.w95)},
            "hold_ms": {"p50": ms(row.h50), "p95": ms(row.h95)}}


async def max_concurrency_per_restaurant(engine: AsyncEngine, ids: list[str]) -> dict[str, int]:
    """The most permits of one restaurant held at once by these bookings: a
    sweep over acquire (+1) and release (-1); at equal times releases first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "WITH ev AS ("
            " SELECT restaurant_id, acquired_at AS t, 1 AS d FROM permit_intervals "
            "  WHERE booking_id = ANY(CAST(:ids AS uuid[]))"
            " UNION ALL"
            " SELECT restaurant_id, COALESCE(released_at, clock_timestamp()), -1 "
            "  FROM permit_intervals WHERE booking_id = ANY(CAST(:ids AS uuid[]))) "
            "SELECT restaurant_id, max(c) FROM ("
            " SELECT restaurant_id, sum(d) OVER (PARTITION BY restaurant_id ORDER BY t, d) AS c"
            " FROM ev) s GROUP BY restaurant_id ORDER BY restaurant_id"),
            {"ids": ids})).all()
    return {str(r): int(n) for r, n in rows}


async def double_booked_table_minutes(engine: AsyncEngine, restaurant_ids: list[str]) -> float:
    """Minutes two allocations of one table overlap (the exclusion constraint says 0)."""
    async with engine.connect() as conn:
        value = (await conn.execute(text(
            "SELECT COALESCE(sum(EXTRACT(EPOCH FROM (LEAST(upper(a.occupied), upper(b.occupied)) "
            "- GREATEST(lower(a.occupied), lower(b.occupied)))) / 60), 0) FROM allocations a "
            "JOIN allocations b ON a.table_id = b.table_id AND a.id < b.id "
            "AND a.occupied && b.occupied WHERE a.restaurant_id = ANY(:r)"),
            {"r": restaurant_ids})).scalar()
    return round(float(value or 0), 3)


async def states_of(engine: AsyncEngine, ids: list[str]) -> Counter[str]:
    """How many of these bookings are in each assignment state."""
    if not ids:
        return Counter()
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT assignment_state, count(*) FROM bookings WHERE id = ANY(CAST(:ids AS uuid[])) "
            "GROUP BY assignment_state"), {"ids": ids})).all()
    return Counter({str(s): int(n) for s, n in rows})


async def count_in_states(engine: AsyncEngine, states: Collection[str]) -> dict[str, int]:
    """Bookings per state, over all bookings, for the given states only (the
    partial scan the bookings_state index serves)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT assignment_state, count(*) FROM bookings "
            "WHERE assignment_state = ANY(:states) GROUP BY assignment_state"),
            {"states": list(states)})).all()
    return {str(state): int(n) for state, n in rows}


async def settled_throughput(engine: AsyncEngine, ids: list[str]) -> float | None:
    """Settled bookings per second, first created -> last settled."""
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT count(settled_at) AS n, EXTRACT(EPOCH FROM max(settled_at) - min(created_at)) "
            "AS span FROM bookings WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).one()
    if not row.n or not row.span:
        return None
    return round(int(row.n) / float(row.span), 2)


async def email_outbox_figures(engine: AsyncEngine, ids: list[str]) -> EmailOutboxFigures:
    async with engine.connect() as conn:
        suppressed = (await conn.execute(text(
            "SELECT COALESCE(sum(duplicates_suppressed), 0) FROM email_outbox "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
        confirmed = frozenset((await conn.execute(text(
            "SELECT id::text FROM bookings WHERE id = ANY(CAST(:ids AS uuid[])) "
            "AND confirmed_at IS NOT NULL"), {"ids": ids})).scalars().all())
        extra = (await conn.execute(text(
            "SELECT COALESCE(sum(GREATEST(send_attempts - 1, 0)), 0) FROM email_outbox "
            "WHERE booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
    return EmailOutboxFigures(int(suppressed), int(extra), confirmed)


async def pending_emails(engine: AsyncEngine, ids: list[str]) -> int:
    """Outbox messages of these bookings not sent yet."""
    async with engine.connect() as conn:
        value = (await conn.execute(text(
            "SELECT count(*) FROM email_outbox WHERE status = 'pending' "
            "AND booking_id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids})).scalar_one()
    return int(value)


async def existing_restaurants(engine: AsyncEngine, ids: list[str]) -> set[str]:
    """Which of these restaurant ids exist."""
    async with engine.connect() as conn:
        return {str(r) for r in (await conn.execute(
            text("SELECT id FROM restaurants WHERE id = ANY(:ids)"), {"ids": ids}
        )).scalars().all()}


async def latest_booking_start(engine: AsyncEngine, restaurant_ids: list[str]) -> datetime | None:
    """The latest start of any booking at these restaurants."""
    async with engine.connect() as conn:
        value = (await conn.execute(
            text("SELECT max(start_at) FROM bookings WHERE restaurant_id = ANY(:ids)"),
            {"ids": restaurant_ids})).scalar()
    return value if isinstance(value, datetime) else None


async def bookings_starting_between(
    engine: AsyncEngine, restaurant_id: str, begin: datetime, end: datetime
) -> int:
    """Bookings of a restaurant that start in [begin, end)."""
    async with engine.connect() as conn:
        value = (await conn.execute(text(
            "SELECT count(*) FROM bookings WHERE restaurant_id = :r "
            "AND start_at >= :b AND start_at < :e"),
            {"r": restaurant_id, "b": begin, "e": end})).scalar_one()
    return int(value)
