"""Availability: which start times have a valid table plan right now.

The policy and the floor snapshot are read from PostgreSQL in one REPEATABLE
READ, READ ONLY transaction (nothing is written), and evaluated by the engine
with the same rules as intake and the assignment pipeline
(`seatflow.engine.availability`): its re-packing stage is bounded by a step
budget (`EngineConfig.availability_repack_steps`), not by this call's wall
clock, so a slow read or a busy machine never changes the answer. When the
stage's wall-clock safety stop fires (an overloaded machine) the result says
so (`Availability.safety_stop`) and a warning is logged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.planning import EngineConfig, RestaurantSnapshot
from seatflow.domain.restaurant import (
    DEFAULT_HORIZON_DAYS,
    InvalidBooking,
    booking_window,
    check_day,
    check_horizon,
    check_span,
)
from seatflow.engine.availability import (
    Availability,
    Slot,
    asked_window,
    candidate_starts,
    evaluate_counted,
    snapshot_span,
    validate_party,
)
from seatflow.logging import get_logger
from seatflow.service.cpu import run_cpu
from seatflow.storage.availability import consistent_read
from seatflow.storage.restaurants import load_policy, load_snapshot, snapshot_time

log = get_logger("seatflow.service")


async def check_availability(
    engine: AsyncEngine,
    restaurant_id: str,
    party_size: int,
    *,
    day: date | None = None,
    window: tuple[datetime, datetime] | None = None,
    config: EngineConfig,
    now: datetime | None = None,
    also: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> Availability:
    """Availability for one party size over a local day or a window (one of
    them), from one read-only snapshot. `also` adds one start time off the
    slot grid (the time a guest asked for). Raises InvalidBooking for an
    unknown restaurant, a bad party size or a bad window, one past the
    booking horizon (`beyond_horizon`) or before yesterday (`in_the_past`)."""
    now = now or datetime.now(UTC)
    async with consistent_read(engine) as conn:
        policy = await load_policy(conn, restaurant_id)
        if policy is None:
            raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
        validate_party(policy, party_size)
        if day is not None:  # before the day's bounds are computed (9999-12-31 has no next day)
            check_day(day, now, horizon_days)
        lo, hi = asked_window(policy, day, window)
        check_span(lo, hi, now, horizon_days)
        starts = candidate_starts(policy, lo, hi)
        if also is not None and also not in starts:
            starts = sorted([*starts, also], key=lambda t: t.astimezone(UTC))
        span = snapshot_span(policy, starts)
        if span is not None:
            snapshot = await load_snapshot(conn, restaurant_id, *span)
        else:
            snapshot = RestaurantSnapshot(restaurant_id=restaurant_id, tables=(), adjacency=())
        as_of = await snapshot_time(conn)
    found = await run_cpu(evaluate_counted, snapshot, policy, party_size, starts, config,
                          now=now)
    if found.safety_stop:
        log.warning("availability safety stop", restaurant_id=restaurant_id,
                    party_size=party_size, steps=found.repack_steps,
                    undecided=sum(s.undecided for s in found.slots))
    return Availability(
        restaurant_id=restaurant_id, timezone=policy.timezone, party_size=party_size,
        slot_minutes=policy.slot_minutes, window_start=lo.astimezone(policy.tz),
        window_end=hi.astimezone(policy.tz), as_of=as_of, slots=tuple(found.slots),
        safety_stop=found.safety_stop,
    )


async def check_start(
    engine: AsyncEngine,
    restaurant_id: str,
    party_size: int,
    start: datetime,
    *,
    config: EngineConfig,
    now: datetime | None = None,
    limit: int = 3,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> tuple[Slot, list[datetime], str]:
    """Whether `start` has a valid plan now, (when it has not) the `limit`
    nearest available start times of the same local day, and the restaurant's
    time zone (to say them on its clock). Raises InvalidBooking
    (unknown restaurant, beyond the horizon, bad party, in the past, outside
    service) first.

    The asked time is checked alone first: a guest who gets it costs one
    evaluation, not the whole day's (intake with `require_availability` calls
    this for every booking); the day is evaluated only to name alternatives."""
    async with consistent_read(engine) as conn:
        policy = await load_policy(conn, restaurant_id)
    if policy is None:
        raise InvalidBooking("unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=policy.tz)
    now = now or datetime.now(UTC)
    check_horizon(start, now, horizon_days)
    # A booking that can never be seated as asked is invalid, not "unavailable".
    booking_window(policy, party_size, start, now=now)
    alone = await check_availability(
        engine, restaurant_id, party_size, window=(start, start + timedelta(seconds=1)),
        config=config, now=now, also=start, horizon_days=horizon_days,
    )
    slot = alone.slot_at(start)
    assert slot is not None
    if slot.available:
        return slot, [], policy.timezone
    found = await check_availability(
        engine, restaurant_id, party_size, day=start.astimezone(policy.tz).date(),
        config=config, now=now, also=start, horizon_days=horizon_days,
    )
    slot = found.slot_at(start)
    assert slot is not None
    if slot.available:
        return slot, [], policy.timezone
    return slot, found.nearest(start, limit), policy.timezone
