"""Availability: start times with a valid plan now (pure rules and over a real
PostgreSQL snapshot), intake that requires it, and idempotent intake."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.intake import IdempotencyConflict, NewBooking
from seatflow.domain.planning import (
    Allocation,
    BookingRequest,
    EngineConfig,
    Mobility,
    Move,
    RestaurantSnapshot,
    Table,
)
from seatflow.domain.restaurant import InvalidBooking, RestaurantPolicy, ServicePeriod, TurnBand
from seatflow.engine import search
from seatflow.engine.availability import (
    candidate_starts,
    day_window,
    evaluate,
    evaluate_counted,
    nearest_times,
)
from seatflow.engine.availability_repack import (
    NOT_REACHED,
    REPACK,
    REUSED,
    SEARCHED,
    UNDECIDED,
    Witness,
    witness_problem,
)
from seatflow.engine.floor import Floor
from seatflow.engine.repack import movable_bookings
from seatflow.service.availability import check_availability
from seatflow.service.bookings import NotAvailable, create_booking
from tests.database.test_floorplan import seatflow
from tests.support import fetch, floorplan, import_plan, scalar

BANDS = (TurnBand(2, 90), TurnBand(4, 105), TurnBand(None, 120))


def policy(slot_minutes: int = 15, tz: str = "UTC") -> RestaurantPolicy:
    return RestaurantPolicy(
        id="av", name="Av", timezone=tz, buffer_minutes=5, total_capacity=20,
        services=(ServicePeriod("lunch", time(12), time(15), BANDS),
                  ServicePeriod("dinner", time(17), time(23), BANDS)),
        slot_minutes=slot_minutes,
    )


def test_start_times_follow_each_service_and_the_slot_step() -> None:
    p = policy()
    lo, hi = day_window(p, date(2030, 3, 5))
    starts = candidate_starts(p, lo, hi)
    assert len(starts) == 12 + 24
    assert starts[0] == datetime(2030, 3, 5, 12, 0, tzinfo=UTC)
    assert starts[11] == datetime(2030, 3, 5, 14, 45, tzinfo=UTC)
    assert starts[12] == datetime(2030, 3, 5, 17, 0, tzinfo=UTC)
    assert starts[-1] == datetime(2030, 3, 5, 22, 45, tzinfo=UTC)
    coarse = candidate_starts(policy(slot_minutes=30), lo, hi)
    assert len(coarse) == 6 + 12 and all(s.minute in (0, 30) for s in coarse)


def test_a_local_time_lost_to_daylight_saving_is_never_offered() -> None:
    p = RestaurantPolicy(
        id="dst", name="Dst", timezone="Europe/London", buffer_minutes=5, total_capacity=20,
        services=(ServicePeriod("late", time(0), time(3), BANDS),), slot_minutes=30,
    )
    lo, hi = day_window(p, date(2030, 3, 31))  # clocks go 01:00 -> 02:00 that night
    local = [s.astimezone(p.tz).strftime("%H:%M") for s in candidate_starts(p, lo, hi)]
    assert local == ["00:00", "00:30", "02:00", "02:30"]


def snapshot(allocations: tuple[Allocation, ...] = ()) -> RestaurantSnapshot:
    return RestaurantSnapshot(
        "av", (Table("T1", 4, "main"), Table("T2", 2, "main")), (("T1", "T2"),),
        allocations=allocations,
    )


def test_evaluate_marks_taken_times_and_agrees_with_the_pipeline_search() -> None:
    p = policy()
    day = date(2030, 3, 5)
    now = datetime(2030, 3, 1, tzinfo=UTC)
    held_from = datetime(2030, 3, 5, 19, 0, tzinfo=UTC)
    # T1 and T2 both held 19:00-21:00 by bookings that already started (not movable).
    taken = tuple(
        Allocation(f"b{t}", t, held_from, held_from + timedelta(hours=2), 2,
                   booking_start=None)
        for t in ("T1", "T2")
    )
    snap = snapshot(taken)
    lo, hi = day_window(p, day)
    starts = [s for s in candidate_starts(p, lo, hi) if s.hour >= 17]
    slots = evaluate(snap, p, 4, starts, EngineConfig(), now=now)
    by_time = {s.start.strftime("%H:%M"): s for s in slots}
    # 17:15 + 105 min + 5 min buffer ends 19:05: overlaps the 19:00 holding.
    assert by_time["17:00"].available and not by_time["17:15"].available
    assert not by_time["20:45"].available and by_time["21:00"].available
    assert "taken" in (by_time["19:00"].reason or "")
    for s in slots:  # the same answer as the pipeline's search for that window
        req = BookingRequest("probe", 4, s.start, s.end + timedelta(minutes=5))
        assert s.available == search(snap, req, EngineConfig(), now=now).found
    # a party the floor can never seat is unavailable everywhere, with the reason
    big = evaluate(snapshot(), p, 9, starts, EngineConfig(), now=now)
    assert not any(s.available for s in big)
    assert "no table fits a party of 9" in (big[0].reason or "")


def test_past_times_are_not_offered() -> None:
    p = policy()
    lo, hi = day_window(p, date(2030, 3, 5))
    now = datetime(2030, 3, 5, 19, 1, tzinfo=UTC)
    slots = evaluate(snapshot(), p, 2, candidate_starts(p, lo, hi), EngineConfig(), now=now)
    assert next(s.start.strftime("%H:%M") for s in slots if s.available) == "19:15"
    assert "in the past" in (slots[0].reason or "")


def test_nearest_times_prefers_the_closest_then_the_earlier() -> None:
    base = datetime(2030, 3, 5, 19, 0, tzinfo=UTC)
    times = [base + timedelta(minutes=m) for m in (-60, -30, 45, 90)]
    assert nearest_times(times, base, 2) == [times[1], times[2]]
    assert nearest_times([], base) == []


# ------------------------------------------------------------ PostgreSQL


def future_day(days: int = 3) -> date:
    return (datetime.now(UTC) + timedelta(days=days)).date()


@pytest.fixture
async def restaurant(db_engine: AsyncEngine, unique_id: str) -> str:
    rid = f"av-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 4}, {"id": "T2", "capacity": 2},
    ], adjacency=[["T1", "T2"]]))
    return rid


async def hold_all_tables(engine: AsyncEngine, rid: str, start: datetime) -> None:
    """Two confirmed bookings that already started (never moved) hold the floor."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        for code in ("T1", "T2"):
            bid = str(uuid.uuid4())
            await conn.execute(text(
                "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                "occupied_until, status, assignment_state, assignment_state_version) VALUES "
                "(CAST(:id AS uuid), :r, 2, :s, :e, :e, 'confirmed', 'confirmed', 3)"),
                {"id": bid, "r": rid, "s": start, "e": start + timedelta(hours=2)})
            await conn.execute(text(
                "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
                "SELECT CAST(:id AS uuid), :r, id, tstzrange(:s, :e, '[)') FROM dining_tables "
                "WHERE restaurant_id = :r AND code = :c"),
                {"id": bid, "r": rid, "c": code, "s": start, "e": start + timedelta(hours=2)})


async def test_availability_reads_the_stored_floor_and_writes_nothing(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    day = future_day()
    held = datetime.combine(day, time(19), tzinfo=UTC)
    await hold_all_tables(db_engine, restaurant, held)
    before = await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                          r=restaurant)
    found = await check_availability(db_engine, restaurant, 4, day=day, config=EngineConfig())
    assert found.slot_minutes == 15 and found.timezone == "UTC"
    by_time = {s.start.strftime("%H:%M"): s for s in found.slots}
    assert by_time["00:00"].available and by_time["23:45"].available
    assert not by_time["19:00"].available and not by_time["17:15"].available
    assert by_time["21:00"].available
    assert by_time["17:00"].available
    window = await check_availability(
        db_engine, restaurant, 4, config=EngineConfig(),
        window=(held - timedelta(hours=1), held + timedelta(hours=1)),
    )
    assert next(s.start.strftime("%H:%M") for s in window.slots) == "18:00"
    assert len(window.slots) == 8 and window.available_starts == []
    after = await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                         r=restaurant)
    assert after == before


async def test_slot_step_comes_from_the_restaurant(db_engine: AsyncEngine, unique_id: str) -> None:
    rid = f"av-step-{unique_id}"
    plan = floorplan(rid, [{"id": "T1", "capacity": 4}])
    plan["restaurant"]["slot_minutes"] = 30
    await import_plan(db_engine, plan)
    found = await check_availability(db_engine, rid, 2, day=future_day(), config=EngineConfig())
    assert found.slot_minutes == 30 and len(found.slots) == 48


async def test_availability_refuses_bad_requests_clearly(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    day = future_day()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"restaurant_id": "no-such-place", "party_size": 2, "day": day}, "unknown restaurant"),
        ({"restaurant_id": restaurant, "party_size": 0, "day": day}, "at least 1"),
        ({"restaurant_id": restaurant, "party_size": 7, "day": day}, "total capacity of 6"),
        ({"restaurant_id": restaurant, "party_size": 2}, "either a date or a window"),
        ({"restaurant_id": restaurant, "party_size": 2,
          "window": (datetime(2030, 1, 2, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))},
         "ends before it starts"),
        ({"restaurant_id": restaurant, "party_size": 2,
          "window": (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 9, tzinfo=UTC))},
         "longer than 2 days"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidBooking, match=message):
            await check_availability(db_engine, config=EngineConfig(), **kwargs)


async def test_required_availability_refuses_a_full_time_with_the_nearest_and_writes_nothing(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    day = future_day()
    held = datetime.combine(day, time(19), tzinfo=UTC)
    await hold_all_tables(db_engine, restaurant, held)
    count = "SELECT count(*) FROM bookings WHERE restaurant_id = :r"
    before = await scalar(db_engine, count, r=restaurant)
    new = NewBooking(restaurant_id=restaurant, party_size=4, start=held,
                     guest_name="Ada", guest_email="ada@example.com")
    with pytest.raises(NotAvailable) as refused:
        await create_booking(db_engine, None, new, task_queue="unused",
                             require_availability=True)
    nearest = [t.strftime("%H:%M") for t in refused.value.nearest]
    # Nearest first: 17:00 (ends 18:50 with its buffer) and 21:00 tie at two
    # hours, the earlier first; then 16:45, which beats 21:15.
    assert nearest == ["17:00", "21:00", "16:45"]
    assert "nearest available: 17:00, 21:00, 16:45" in refused.value.message
    assert await scalar(db_engine, count, r=restaurant) == before
    # Accept-then-review stays the default: the same request is accepted without the check.
    created = await create_booking(db_engine, None, new, task_queue="unused")
    assert created.created and await scalar(db_engine, count, r=restaurant) == before + 1
    # A free time passes the check.
    ok = await create_booking(
        db_engine, None, NewBooking(restaurant_id=restaurant, party_size=4,
                                    start=held + timedelta(hours=2)),
        task_queue="unused", require_availability=True,
    )
    assert ok.created


async def test_same_key_returns_the_same_booking_and_a_different_request_is_refused(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    start = datetime.combine(future_day(), time(12), tzinfo=UTC)
    new = NewBooking(restaurant_id=restaurant, party_size=2, start=start, guest_name="Bo",
                     guest_email="bo@example.com", idempotency_key="order-42")
    first = await create_booking(db_engine, None, new, task_queue="unused")
    again = await create_booking(db_engine, None, new, task_queue="unused",
                                 require_availability=True)
    assert first.created and not again.created
    assert again.booking_id == first.booking_id
    rows = await fetch(db_engine, "SELECT id FROM bookings WHERE restaurant_id = :r "
                       "AND idempotency_key = 'order-42'", r=restaurant)
    assert len(rows) == 1
    intake = await scalar(db_engine, "SELECT count(*) FROM intake_outbox WHERE booking_id = "
                          "CAST(:id AS uuid)", id=first.booking_id)
    assert intake == 1
    with pytest.raises(IdempotencyConflict, match="already used for a different booking"):
        await create_booking(db_engine, None,
                             NewBooking(restaurant_id=restaurant, party_size=3, start=start,
                                        idempotency_key="order-42"),
                             task_queue="unused")
    # The same key at another restaurant is another booking.
    other = f"{restaurant}-b"
    await import_plan(db_engine, floorplan(other, [{"id": "T1", "capacity": 4}]))
    elsewhere = await create_booking(
        db_engine, None,
        NewBooking(restaurant_id=other, party_size=2, start=start, idempotency_key="order-42"),
        task_queue="unused",
    )
    assert elsewhere.created and elsewhere.booking_id != first.booking_id


async def test_a_retried_booking_id_returns_the_booking_not_an_integrity_error(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    start = datetime.combine(future_day(), time(13), tzinfo=UTC)
    bid = str(uuid.uuid4())
    new = NewBooking(restaurant_id=restaurant, party_size=2, start=start, booking_id=bid)
    first = await create_booking(db_engine, None, new, task_queue="unused")
    again = await create_booking(db_engine, None, new, task_queue="unused")
    assert (first.booking_id, first.created) == (bid, True)
    assert (again.booking_id, again.created) == (bid, False)
    with pytest.raises(IdempotencyConflict):
        await create_booking(db_engine, None, NewBooking(
            restaurant_id=restaurant, party_size=4, start=start, booking_id=bid),
            task_queue="unused")
    with pytest.raises(InvalidBooking, match="printable"):
        await create_booking(db_engine, None, NewBooking(
            restaurant_id=restaurant, party_size=2, start=start, idempotency_key="a\nb"),
            task_queue="unused")


async def test_concurrent_retries_with_one_key_create_one_booking(
    db_engine: AsyncEngine, restaurant: str
) -> None:
    start = datetime.combine(future_day(), time(14), tzinfo=UTC)
    new = NewBooking(restaurant_id=restaurant, party_size=2, start=start,
                     guest_email="cy@example.com", idempotency_key=f"race-{uuid.uuid4()}")
    results = await asyncio.gather(*(
        create_booking(db_engine, None, new, task_queue="unused") for _ in range(12)
    ))
    assert len({r.booking_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    rows = await fetch(db_engine, "SELECT id FROM bookings WHERE idempotency_key = :k",
                       k=new.idempotency_key)
    assert len(rows) == 1


def test_cli_availability(pg_url: str, restaurant: str) -> None:
    day = future_day().isoformat()
    result = seatflow(pg_url, "availability", "--restaurant", restaurant, "--party", "4",
                      "--date", day, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["party_size"] == 4 and len(data["slots"]) == 96
    assert data["available"][0].startswith(f"{day}T00:00")
    text = seatflow(pg_url, "availability", "--restaurant", restaurant, "--party", "4",
                    "--date", day)
    assert text.returncode == 0 and "96 of 96 start times available" in text.stdout
    for args, message in [
        (["--date", "tomorrow"], "is not a date"),
        ([], "give --date, or --from and --to"),
        (["--from", "2030-01-01T18:00"], "--from and --to go together"),
    ]:
        bad = seatflow(pg_url, "availability", "--restaurant", restaurant, "--party", "4", *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    unknown = seatflow(pg_url, "availability", "--restaurant", "nowhere", "--party", "4",
                       "--date", day)
    assert unknown.returncode == 1 and "unknown restaurant" in unknown.stderr


def test_evaluate_agrees_with_search_on_random_evenings() -> None:
    """The shortcut for start times with a free plan gives the search's answer,
    re-packing of not-yet-started bookings included."""
    import random

    p = policy()
    day = date(2030, 3, 5)
    now = datetime(2030, 3, 5, 17, 30, tzinfo=UTC)  # bookings before 17:30 have started
    lo, hi = day_window(p, day)
    starts = [s for s in candidate_starts(p, lo, hi) if s.hour >= 17]
    tables = tuple(Table(f"T{i}", cap, "main" if i < 5 else "patio")
                   for i, cap in enumerate([2, 2, 4, 4, 6, 2, 4, 4], start=1))
    edges = (("T1", "T2"), ("T2", "T3"), ("T3", "T4"), ("T6", "T7"), ("T7", "T8"))
    checked = repacked = 0
    for seed in range(40):
        rng = random.Random(seed)
        allocations: list[Allocation] = []
        for n in range(rng.randint(4, 14)):
            at = rng.choice(starts)
            table = rng.choice(tables)
            held = Allocation(f"b{n}", table.id, at, at + timedelta(minutes=110),
                              rng.randint(1, table.capacity), booking_start=at)
            # a table is held by one booking at a time (the database's exclusion
            # constraint); re-packing reasons from a floor that respects it
            if not any(a.table_id == held.table_id and a.start < held.end
                       and held.start < a.end for a in allocations):
                allocations.append(held)
        snap = RestaurantSnapshot("av", tables, edges, allocations=tuple(allocations))
        party = rng.choice([2, 4, 6, 8])
        # Steps bound the re-packing, not the wall clock: a busy machine must not
        # cut one search short and not the other.
        config = EngineConfig(max_tables=rng.choice([1, 2, 3]), repack_safety_stop_ms=None,
                              max_exact_steps=10**6, availability_repack_steps=UNLIMITED)
        for s in evaluate(snap, p, party, starts, config, now=now):
            if not s.service:  # in the past: refused by the intake rules, not the search
                continue
            req = BookingRequest("probe", party, s.start, s.end + timedelta(minutes=5))
            found = search(snap, req, config, now=now)
            assert s.available == found.found, (seed, s)
            assert s.repack == (found.found and bool(found.moves))
            assert found.repack != "bounded"  # the search decided exactly: a no is a proof
            checked += 1
            repacked += s.repack
    assert checked == 40 * 22 and repacked > 0


# ------------------------------------------- the yes/no path against the search

DAY = date(2030, 3, 5)
# steps only, and enough of them that the search on these floors is exact (a no is a proof)
EXACT_STEPS = 10**6
UNLIMITED = 10**9  # availability_repack_steps that never run out on these floors


@st.composite
def evenings(draw: st.DrawFn) -> tuple[RestaurantSnapshot, int, EngineConfig, datetime]:
    n = draw(st.integers(3, 7))
    tables = tuple(
        Table(f"T{i}", draw(st.integers(1, 6)), draw(st.sampled_from(["main", "main", "patio"])),
              mobility=draw(st.sampled_from([Mobility.MOVABLE, Mobility.MOVABLE, Mobility.FIXED])))
        for i in range(n)
    )
    ids = [t.id for t in tables]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    edges = tuple(draw(st.lists(st.sampled_from(pairs), max_size=8, unique=True)))
    p = policy()
    lo, hi = day_window(p, DAY)
    dinner = [s for s in candidate_starts(p, lo, hi) if s.hour >= 17]
    allocations: list[Allocation] = []
    for j in range(draw(st.integers(4, 16))):
        start = draw(st.sampled_from(dinner))
        end = start + timedelta(minutes=draw(st.sampled_from([95, 110, 125])))
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=2, unique=True))
        if any(a.table_id in chosen and a.start < end and start < a.end for a in allocations):
            continue  # the database never holds a table twice at once
        party = draw(st.integers(1, 4))
        started = draw(st.sampled_from([False] * 5 + [True]))
        strategy = draw(st.sampled_from([None] * 5 + ["manual"]))
        wish = draw(st.sampled_from([None, None, "main", "patio"]))
        allocations += [
            Allocation(f"b{j}", t, start, end, party, None if started else start, strategy, wish)
            for t in chosen
        ]
    snap = RestaurantSnapshot("av", tables, edges, allocations=tuple(allocations))
    # without re-packing, three-table plans wait until two hours before the start:
    # availability must hold them back exactly as the search does
    config = EngineConfig(max_tables=draw(st.integers(1, 3)), max_overage=draw(st.integers(0, 4)),
                          repack=draw(st.sampled_from([True, True, False])),
                          repack_max_moves=draw(st.sampled_from([None, None, 1, 2])),
                          repack_safety_stop_ms=None, max_exact_steps=EXACT_STEPS)
    now = draw(st.sampled_from([datetime(2030, 3, 4, tzinfo=UTC),
                                datetime(2030, 3, 5, 17, 30, tzinfo=UTC)]))
    return snap, draw(st.integers(1, 6)), config, now


def dinner_starts() -> list[datetime]:
    p = policy()
    lo, hi = day_window(p, DAY)
    return [s for s in candidate_starts(p, lo, hi) if s.hour >= 17]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evenings())
def test_every_offered_time_is_seatable_by_the_search_and_without_a_budget_every_one_is(
    case: tuple[RestaurantSnapshot, int, EngineConfig, datetime],
) -> None:
    """The fast path against the plain per-time `search` (exact on these floors):
    with no step limit it answers exactly like the search; with no steps at all
    it still offers nothing the search cannot seat, and what it cannot decide is
    marked undecided, never offered."""
    snap, party, config, now = case
    p = policy()
    starts = dinner_starts()
    unlimited = evaluate_counted(
        snap, p, party, starts, replace(config, availability_repack_steps=UNLIMITED), now=now)
    starved = evaluate_counted(
        snap, p, party, starts, replace(config, availability_repack_steps=0), now=now)
    assert unlimited.counts[NOT_REACHED] == unlimited.counts[SEARCHED] == 0
    for full, fast in zip(unlimited.slots, starved.slots, strict=True):
        if not full.service:  # refused by the intake rules (in the past)
            assert not fast.available
            continue
        req = BookingRequest("probe", party, full.start, full.end + timedelta(minutes=5))
        found = search(snap, req, config, now=now)
        assert found.repack != "bounded"
        assert full.available == found.found, (full, found)
        assert full.repack == (found.found and bool(found.moves))
        assert not full.undecided
        event(f"seatable: {'re-packing' if full.repack else full.available}, "
              f"0 steps: {'undecided' if fast.undecided else fast.available}")
        if fast.available:
            assert found.found, (fast, found)
        elif not fast.undecided:
            assert not found.found, (fast, found)  # only proofs are "no" without "undecided"
        else:
            assert UNDECIDED in (fast.reason or "")


def repack_floor() -> RestaurantSnapshot:
    """A couple (b1) holds the only table for four 19:00-21:00 and has not
    started; a table for two stays free all evening."""
    held = datetime(2030, 3, 5, 19, 0, tzinfo=UTC)
    return RestaurantSnapshot(
        "av", (Table("T1", 4, "main"), Table("T2", 2, "main")), (),
        allocations=(Allocation("b1", "T1", held, held + timedelta(hours=2), 2,
                                booking_start=held),),
    )


def test_a_time_only_re_packing_can_seat_is_offered_when_decided_in_budget() -> None:
    p = policy()
    now = datetime(2030, 3, 4, tzinfo=UTC)
    snap = repack_floor()
    config = EngineConfig()
    found = evaluate_counted(snap, p, 4, dinner_starts(), config, now=now)
    by_time = {s.start.strftime("%H:%M"): s for s in found.slots}
    for hhmm in ("17:30", "19:00", "20:30"):
        req = BookingRequest("probe", 4, by_time[hhmm].start,
                             by_time[hhmm].end + timedelta(minutes=5))
        result = search(snap, req, config, now=now)
        assert result.found and result.moves, "only re-packing seats this time"
        assert by_time[hhmm].available and by_time[hhmm].repack and by_time[hhmm].reason is None
    assert by_time["17:00"].available and not by_time["17:00"].repack  # ends before 19:00
    assert found.counts[REPACK] >= 1 and found.counts[REPACK] + found.counts[REUSED] == 15
    assert found.counts[SEARCHED] == found.counts[NOT_REACHED] == 0


def test_a_spent_budget_is_reported_and_the_time_is_not_offered() -> None:
    p = policy()
    now = datetime(2030, 3, 4, tzinfo=UTC)
    starved = EngineConfig(availability_repack_steps=0)
    found = evaluate_counted(repack_floor(), p, 4, dinner_starts(), starved, now=now)
    by_time = {s.start.strftime("%H:%M"): s for s in found.slots}
    late = by_time["19:00"]
    assert not late.available and late.undecided and UNDECIDED in (late.reason or "")
    assert late.to_dict()["undecided"] is True
    assert found.counts[NOT_REACHED] == 15 and found.counts[REPACK] == 0
    assert by_time["17:00"].available and not by_time["17:00"].undecided  # a free plan
    assert by_time["22:45"].available  # free again after 21:00
    # nothing may move (the couple has started): a proof, not a budget matter
    started = replace_allocations(repack_floor(), booking_start=None)
    proven = evaluate_counted(started, p, 4, dinner_starts(), starved, now=now)
    slot = next(s for s in proven.slots if s.start.strftime("%H:%M") == "19:00")
    assert not slot.available and not slot.undecided and "taken" in (slot.reason or "")
    assert proven.counts[NOT_REACHED] == 0


def replace_allocations(snap: RestaurantSnapshot, **changes: object) -> RestaurantSnapshot:
    return replace(snap, allocations=tuple(replace(a, **changes) for a in snap.allocations))  # type: ignore[arg-type]


def test_a_re_assignment_is_checked_from_scratch_before_a_time_is_offered() -> None:
    snap = replace(repack_floor(), tables=(*repack_floor().tables, Table("T3", 2, "patio")))
    fl = Floor(snap)
    config = EngineConfig()
    at7 = datetime(2030, 3, 5, 19, 0, tzinfo=UTC)
    req = BookingRequest("probe", 4, at7, at7 + timedelta(minutes=110))
    now = datetime(2030, 3, 4, tzinfo=UTC)
    movable = movable_bookings(fl, req, now, config)
    good = Witness(("T1",), (Move("b1", ("T1",), ("T2",)),))
    assert witness_problem(fl, req, config, movable, good) is None
    bad = {
        "not moved off": Witness(("T1",), ()),
        "too small": Witness(("T2",), ()),
        "may not move": Witness(("T1",), (Move("b9", ("T1",), ("T2",)),)),
        "wrong origin": Witness(("T1",), (Move("b1", ("T2",), ("T3",)),)),
        "onto the request": Witness(("T2",), (Move("b1", ("T1",), ("T2",)),)),
        "moved twice": Witness(("T1",), (Move("b1", ("T1",), ("T2",)),
                                        Move("b1", ("T1",), ("T3",)))),
    }
    for what, witness in bad.items():
        assert witness_problem(fl, req, config, movable, witness) is not None, what
    # a venue's cap on moves (SEATFLOW_REPACK_MAX_MOVES) holds for offered times too
    capped = replace(config, repack_max_moves=1)
    assert witness_problem(fl, req, capped, movable, good) is None
    two_moves = Witness(("T1",), (Move("b1", ("T1",), ("T2",)), Move("b2", ("T2",), ("T3",))))
    assert "at most 1" in (witness_problem(fl, req, capped, movable, two_moves) or "")
    # the couple stays in its zone (main); only a wish for the patio lets it go there
    to_patio = Witness(("T1",), (Move("b1", ("T1",), ("T3",)),))
    assert "zone patio" in (witness_problem(fl, req, config, movable, to_patio) or "")
    wished = replace_allocations(snap, zone_preference="patio")
    wfl = Floor(wished)
    assert witness_problem(wfl, req, config, movable_bookings(wfl, req, now, config),
                           to_patio) is None
    # a guest re-packing moved before is never moved again
    moved = Floor(replace_allocations(snap, times_moved=1))
    assert "may not move" in (witness_problem(
        moved, req, config, movable_bookings(moved, req, now, config), good) or "")


def test_the_garbage_collector_is_paused_for_an_evaluation_and_restored() -> None:
    import gc

    p = policy()
    now = datetime(2030, 3, 4, tzinfo=UTC)
    seen: list[bool] = []
    original = Floor.__init__

    def spy(self: Floor, snapshot: RestaurantSnapshot) -> None:
        seen.append(gc.isenabled())
        original(self, snapshot)

    try:
        Floor.__init__ = spy  # type: ignore[method-assign]
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            evaluate(repack_floor(), p, 4, dinner_starts(), EngineConfig(), now=now)
            assert gc.isenabled() == enabled
    finally:
        Floor.__init__ = original  # type: ignore[method-assign]
        gc.enable()
    assert seen and not any(seen)


async def test_the_step_budget_leaves_re_packing_undecided_when_spent(
    db_engine: AsyncEngine, unique_id: str
) -> None:
    """Over PostgreSQL: a couple holds the table for four at 19:00 and has not
    started; re-seating it frees the table. Without re-packing steps the time is
    undecided and not offered; with the default budget, offered. Neither answer
    depends on how long the snapshot read took."""
    from sqlalchemy import text

    rid = f"av-budget-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [
        {"id": "T1", "capacity": 4}, {"id": "T2", "capacity": 2},
    ]))
    day = future_day()
    held = datetime.combine(day, time(19), tzinfo=UTC)
    bid = str(uuid.uuid4())
    async with db_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
            "occupied_until, status, assignment_state, assignment_state_version) VALUES "
            "(CAST(:id AS uuid), :r, 2, :s, :e, :e, 'confirmed', 'confirmed', 3)"),
            {"id": bid, "r": rid, "s": held, "e": held + timedelta(hours=2)})
        await conn.execute(text(
            "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
            "SELECT CAST(:id AS uuid), :r, id, tstzrange(:s, :e, '[)') FROM dining_tables "
            "WHERE restaurant_id = :r AND code = 'T1'"),
            {"id": bid, "r": rid, "s": held, "e": held + timedelta(hours=2)})
    window = (held, held + timedelta(minutes=1))
    found = await check_availability(db_engine, rid, 4, window=window, config=EngineConfig())
    slot = found.slot_at(held)
    assert slot is not None and slot.available and slot.repack and not slot.undecided
    assert not found.safety_stop and found.to_dict()["safety_stop"] is False
    spent = await check_availability(db_engine, rid, 4, window=window,
                                     config=EngineConfig(availability_repack_steps=0))
    slot = spent.slot_at(held)
    assert slot is not None and not slot.available and slot.undecided
    assert UNDECIDED in (slot.reason or "") and not spent.safety_stop


def test_availability_and_the_attempt_use_the_same_plan_rules_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Availability once built its own EngineConfig without the re-packing freeze
    window, so a changed SEATFLOW_REPACK_FREEZE_MINUTES changed what the pipeline
    seats but not what availability offered."""
    from activities.booking import BookingActivities
    from activities.shadow import ShadowActivities
    from seatflow.config import Settings

    monkeypatch.setenv("SEATFLOW_REPACK_FREEZE_MINUTES", "15")
    monkeypatch.setenv("SEATFLOW_WIDE_PLAN_LEAD_MINUTES", "525600")
    monkeypatch.setenv("SEATFLOW_MAX_TABLES", "2")
    monkeypatch.setenv("SEATFLOW_REPACK", "false")
    configured = Settings()
    config = configured.engine_config()
    assert (config.repack_freeze_minutes, config.wide_plan_lead_minutes, config.max_tables) == (
        15, 525600, 2)
    assert config.repack is False and Settings(SEATFLOW_REPACK="true").engine_config().repack
    assert Settings(SEATFLOW_REPACK_MAX_MOVES="3").engine_config().repack_max_moves == 3
    assert Settings().engine_config().repack_max_moves == 2  # the default cap
    assert Settings().engine_config().availability_repack_steps == (
        EngineConfig().availability_repack_steps)
    steps = Settings(SEATFLOW_AVAILABILITY_REPACK_STEPS="500").engine_config()
    assert steps.availability_repack_steps == 500
    with pytest.raises(ValueError, match="SEATFLOW_AVAILABILITY_REPACK_STEPS"):
        Settings(SEATFLOW_AVAILABILITY_REPACK_STEPS="-1")
    assert Settings(SEATFLOW_REPACK_MAX_MOVES="unlimited").engine_config().repack_max_moves is None
    for refused in ("0", "-1", "many"):  # 0 no longer means unlimited
        with pytest.raises(ValueError, match="SEATFLOW_REPACK_MAX_MOVES"):
            Settings(SEATFLOW_REPACK_MAX_MOVES=refused)
    assert BookingActivities(None, None, configured).config == config  # type: ignore[arg-type]
    assert ShadowActivities(None, configured).config == config  # type: ignore[arg-type]
    monkeypatch.setenv("SEATFLOW_WIDE_PLAN_LEAD_MINUTES", "-1")
    with pytest.raises(ValueError, match="SEATFLOW_WIDE_PLAN_LEAD_MINUTES"):
        Settings()


def test_without_repacking_availability_holds_back_three_tables_as_the_search_does() -> None:
    """A party of ten only three 4-tops can seat: with re-packing off the search
    gives it no plan further than `wide_plan_lead_minutes` ahead, so availability
    must not offer such a time either (it once checked every start with three
    tables, and offered times the pipeline then refused)."""
    p = policy()
    tables = (Table("A4", 4, "main"), Table("B4", 4, "main"), Table("C4", 4, "main"))
    snap = RestaurantSnapshot("av", tables, (("A4", "B4"), ("B4", "C4")))
    starts = dinner_starts()
    final = EngineConfig(repack=False)
    ahead = evaluate(snap, p, 10, starts, final, now=datetime(2030, 3, 4, tzinfo=UTC))
    assert not any(s.available for s in ahead)
    assert "no table fits a party of 10" in (ahead[0].reason or "")
    near = evaluate(snap, p, 10, starts, final, now=datetime(2030, 3, 5, 17, 0, tzinfo=UTC))
    offered = {s.start.strftime("%H:%M") for s in near if s.available}
    assert offered == {"17:00", "17:15", "17:30", "17:45", "18:00", "18:15", "18:30", "18:45",
                       "19:00"}  # within 120 minutes of 17:00
    # with re-packing (the default) nothing waits
    assert all(s.available for s in evaluate(snap, p, 10, starts, EngineConfig(),
                                             now=datetime(2030, 3, 4, tzinfo=UTC)))


def test_a_removed_setting_left_in_the_environment_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SEATFLOW_REPACK_DEEP_MS (the deep re-pack of a booking's retries, removed)
    is ignored like any variable seatflow does not read, even at a value it
    once refused: an old .env still starts, with the plan rules it has without it."""
    from activities.booking import BookingActivities
    from seatflow.config import Settings

    plain = Settings().engine_config()
    monkeypatch.setenv("SEATFLOW_REPACK_DEEP_MS", "2500")
    assert Settings().engine_config() == plain
    assert BookingActivities(None, None, Settings()).config == plain  # type: ignore[arg-type]
