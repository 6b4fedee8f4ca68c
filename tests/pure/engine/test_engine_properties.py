"""Property-based checks over random floors: validity, exhaustiveness, determinism, re-packing."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from engine_floors import at, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seatflow.domain.planning import (
    AdjacencyMode,
    Allocation,
    BookingRequest,
    EngineConfig,
    KnownBooking,
    Mobility,
    RestaurantSnapshot,
    Table,
    TableStatus,
)
from seatflow.engine import quote_tables, search, validate_plan

SETTINGS = settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def evenings(
    draw: st.DrawFn, crowded: bool = False
) -> tuple[RestaurantSnapshot, BookingRequest, EngineConfig]:
    """A random floor, allocations and request; `crowded` packs held bookings
    around the request so that re-packing has work to do."""
    n = draw(st.integers(3, 10) if crowded else st.integers(1, 9))
    tables = []
    for i in range(n):
        capacity = draw(st.integers(2, 6) if crowded else st.integers(1, 8))
        min_party = 1 if crowded else draw(st.integers(1, max(1, capacity // 2)))
        max_party = draw(st.one_of(st.none(), st.integers(min_party, capacity)))
        tables.append(
            Table(
                id=f"T{i}",
                capacity=capacity,
                zone=draw(st.sampled_from(["main", "main", "patio"])),
                min_party=min_party,
                max_party=max_party,
                mobility=draw(
                    st.sampled_from([Mobility.MOVABLE, Mobility.MOVABLE, Mobility.FIXED])
                ),
                active=crowded or draw(st.sampled_from([True] * 5 + [False])),
                status=TableStatus.AVAILABLE
                if crowded
                else draw(
                    st.sampled_from([TableStatus.AVAILABLE] * 5 + [TableStatus.OUT_OF_SERVICE])
                ),
            )
        )
    ids = [t.id for t in tables]
    pairs = [(a, b) for a, b in combinations(ids, 2)]
    edges = (
        draw(st.lists(st.sampled_from(pairs), max_size=20 if crowded else 12, unique=True))
        if pairs
        else []
    )
    allocations = []
    for j in range(draw(st.integers(2, 10) if crowded else st.integers(0, 7))):
        start = draw(st.integers(-60, 60) if crowded else st.integers(-120, 180)) // 15 * 15
        minutes = draw(st.sampled_from([60, 90, 105, 120]))
        booking_tables = draw(
            st.lists(st.sampled_from(ids), min_size=1, max_size=1 if crowded else 2, unique=True)
        )
        if any(
            a.table_id in booking_tables and a.start < at(start + minutes) and at(start) < a.end
            for a in allocations
        ):
            continue  # the database never holds a double-booked table
        for table_id in booking_tables:
            allocations.append(
                Allocation(
                    booking_id=f"b{j}",
                    table_id=table_id,
                    start=at(start),
                    end=at(start + minutes),
                    party_size=draw(st.integers(1, 3) if crowded else st.integers(1, 6)),
                    booking_start=at(start),
                )
            )
    known = tuple(
        KnownBooking(
            f"k{j}", draw(st.integers(1, 8)), at(s := draw(st.integers(-60, 120))), at(s + 105)
        )
        for j in range(draw(st.integers(0, 2)))
    )
    snapshot = RestaurantSnapshot(
        restaurant_id="r",
        tables=tuple(tables),
        adjacency=tuple(edges),
        allocations=tuple(allocations),
        known_bookings=known,
        zones_active=() if crowded else draw(st.sampled_from([(), ("main",), ("main", "patio")])),
    )
    start = draw(st.integers(-60, 120)) // 15 * 15
    request = BookingRequest(
        booking_id="new",
        party_size=draw(st.integers(2, 6) if crowded else st.integers(1, 14)),
        start=at(start),
        end=at(start + draw(st.sampled_from([60, 105, 120]))),
        zone_preference=draw(st.sampled_from([None, "main", "patio"])),
    )
    config = EngineConfig(
        max_tables=draw(st.integers(1, 4)),
        max_overage=draw(st.integers(0, 5)),
        adjacency_mode=draw(st.sampled_from(list(AdjacencyMode))),
        max_plans=1000,
        repack=False,
    )
    return snapshot, request, config


def reference_valid_plans(
    snapshot: RestaurantSnapshot, request: BookingRequest, config: EngineConfig
) -> set[tuple[str, ...]]:
    """Brute force over every subset, straight from the plan rules of docs/engine.md."""
    by_id = {t.id: t for t in snapshot.tables}
    edges = {frozenset(e) for e in snapshot.adjacency}

    def adjacent(a: str, b: str) -> bool:
        return frozenset((a, b)) in edges

    def usable(t: Table) -> bool:
        if not t.in_service:
            return False
        if snapshot.zones_active and t.zone not in snapshot.zones_active:
            return False
        return not any(
            a.table_id == t.id and a.start < request.end and request.start < a.end
            for a in snapshot.allocations
        )

    def connected(group: tuple[str, ...]) -> bool:
        seen, stack = {group[0]}, [group[0]]
        while stack:
            x = stack.pop()
            for y in group:
                if y not in seen and adjacent(x, y):
                    seen.add(y)
                    stack.append(y)
        return len(seen) == len(group)

    party = request.party_size
    found = set()
    for size in range(1, config.max_tables + 1):
        for group in combinations(sorted(by_id), size):
            chosen = [by_id[g] for g in group]
            if not all(usable(t) for t in chosen):
                continue
            capacity = sum(t.capacity for t in chosen)
            if not party <= capacity <= party + config.max_overage:
                continue
            if size == 1:
                t = chosen[0]
                if party < t.min_party or (t.max_party is not None and party > t.max_party):
                    continue
            else:
                if any(t.mobility != Mobility.MOVABLE for t in chosen):
                    continue
                if len({t.zone for t in chosen}) != 1:
                    continue
                if not connected(group):
                    continue
                mode = config.adjacency_mode
                if mode == AdjacencyMode.PAIRWISE and not all(
                    adjacent(a, b) for a, b in combinations(group, 2)
                ):
                    continue
                if mode == AdjacencyMode.NEIGHBORS and not any(
                    all(o == h or adjacent(h, o) for o in group) for h in group
                ):
                    continue
            found.add(group)
    return found


@SETTINGS
@given(evenings())
def test_every_returned_plan_is_valid(case: tuple) -> None:
    snapshot, request, config = case
    result = search(snapshot, request, config)
    valid = reference_valid_plans(snapshot, request, config)
    for plan in result.plans:
        assert plan.tables in valid
        assert validate_plan(snapshot, request, plan.tables, config) is None
    assert result.found or result.reason


@SETTINGS
@given(evenings())
def test_search_is_exhaustive_and_never_misses_a_single_table(case: tuple) -> None:
    snapshot, request, config = case
    result = search(snapshot, request, config)
    valid = reference_valid_plans(snapshot, request, config)
    returned = [plan.tables for plan in result.plans]
    assert len(returned) == len(set(returned))  # deduplicated by table set
    assert {g for g in valid if len(g) == 1} <= set(returned)
    assert set(returned) == valid


@SETTINGS
@given(evenings(), st.randoms(use_true_random=False))
def test_results_are_identical_across_runs_and_input_order(case: tuple, rng) -> None:
    snapshot, request, config = case
    first = search(snapshot, request, config)
    # the same snapshot (its zone and demand profile too), its lists shuffled
    shuffled = replace(
        snapshot,
        tables=tuple(rng.sample(snapshot.tables, len(snapshot.tables))),
        adjacency=tuple(
            (b, a) if rng.random() < 0.5 else (a, b)
            for a, b in rng.sample(snapshot.adjacency, len(snapshot.adjacency))
        ),
        allocations=tuple(rng.sample(snapshot.allocations, len(snapshot.allocations))),
        known_bookings=tuple(rng.sample(snapshot.known_bookings, len(snapshot.known_bookings))),
    )
    assert search(snapshot, request, config) == first
    assert search(shuffled, request, config) == first
    assert quote_tables(shuffled, request, config) == quote_tables(snapshot, request, config)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evenings(crowded=True), st.one_of(st.none(), st.integers(-150, 150)))
def test_repacking_never_overlaps_and_never_moves_a_started_booking(
    case: tuple, now_minutes: int | None
) -> None:
    snapshot, request, config = case
    config = EngineConfig(
        max_tables=config.max_tables,
        max_overage=config.max_overage,
        adjacency_mode=config.adjacency_mode,
        repack=True,
    )
    now = None if now_minutes is None else at(now_minutes)
    result = search(snapshot, request, config, now=now)
    if not result.moves:
        return
    assert result.plans[0].strategy == "repack"
    held = {}
    for a in snapshot.allocations:
        held.setdefault(a.booking_id, []).append(a)
    moved = {m.booking_id for m in result.moves}
    assert config.repack_max_moves is not None
    assert len(moved) == len(result.moves) <= config.repack_max_moves
    after = [a for a in snapshot.allocations if a.booking_id not in moved]
    for move in result.moves:
        allocations = held[move.booking_id]
        assert all(
            a.booking_start is not None and (now is None or a.booking_start > now)
            for a in allocations
        )
        assert move.from_tables == tuple(sorted({a.table_id for a in allocations}))
        assert move.to_tables != move.from_tables
        first = allocations[0]
        zones = {t.zone for t in snapshot.tables if t.id in move.to_tables}
        old_zones = {t.zone for t in snapshot.tables if t.id in move.from_tables}
        # its own zone (no allocation here has a zone wish to move into)
        assert first.zone_preference is None and zones == old_zones
        after.extend(
            Allocation(
                move.booking_id, t, first.start, first.end, first.party_size, first.booking_start
            )
            for t in move.to_tables
        )
        # the moved booking's new tables are a valid plan for it, given everything else
        others = tuple(a for a in after if a.booking_id != move.booking_id)
        moved_request = BookingRequest(move.booking_id, first.party_size, first.start, first.end)
        moved_snapshot = RestaurantSnapshot(
            "r", snapshot.tables, snapshot.adjacency, others, (), snapshot.zones_active
        )
        assert move.to_tables in reference_valid_plans(moved_snapshot, moved_request, config)
    after.extend(
        Allocation(
            request.booking_id, t, request.start, request.end, request.party_size, request.start
        )
        for t in result.plans[0].tables
    )
    for i, a in enumerate(after):
        for b in after[i + 1 :]:
            if a.table_id == b.table_id and a.booking_id != b.booking_id:
                assert not (a.start < b.end and b.start < a.end), (a, b)
    # and the freed plan is valid for the new booking once the moves are applied
    final = RestaurantSnapshot(
        "r",
        snapshot.tables,
        snapshot.adjacency,
        tuple(a for a in after if a.booking_id != request.booking_id),
        (),
        snapshot.zones_active,
    )
    assert result.plans[0].tables in reference_valid_plans(final, request, config)


@SETTINGS
@given(evenings(), st.integers(1, 4))
def test_top_plans_are_the_same_whether_or_not_the_rest_are_scored(case: tuple, keep: int) -> None:
    snapshot, request, config = case
    everything = search(snapshot, request, config)
    top = search(snapshot, request, replace(config, max_plans=keep))
    assert top.plans == everything.plans[:keep]
