"""The deep re-pack (CP-SAT, `repack_deep_ms`) that a booking's retries run when
the exact search's budget is spent: on small random floors, with the exact and
bounded searches given no steps at all, it seats the request exactly when the
brute force over every re-assignment (swaps included: the database applies a
re-pack's moves as one set) can, with the fewest moves, valid plans once all
moves are applied, and never a booking that may not move."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_floors import at, booking, floor, held, table
from hypothesis import event, given
from test_repack_exact import (
    EXACT,
    SETTINGS,
    assert_valid_re_pack,
    crowded,
    repack_case,
    within_cap,
)

from seatflow.domain.planning import Allocation, EngineConfig, RestaurantSnapshot
from seatflow.engine import search
from seatflow.engine.deep import INFEASIBLE, OPTIMAL, deep_repack
from seatflow.engine.floor import Floor
from seatflow.engine.repack import movable_bookings

# the exact and the bounded searches give up at once, so the deep one decides
STARVED = {"max_exact_steps": 0, "max_repack_steps": 0}


@SETTINGS
@given(crowded())
def test_deep_repacking_seats_a_request_exactly_when_a_re_assignment_exists(case: tuple) -> None:
    snapshot, request, config, now = case
    asked = repack_case(case)
    if asked is None:
        return
    fewest = within_cap(asked[2], config)
    deep = replace(config, **STARVED, repack_deep_ms=10_000)
    result = search(snapshot, request, deep, now=now)
    event(f"fewest moves: {fewest}")
    if fewest is None:
        assert result.plans == () and result.moves == ()
        assert result.repack == "deep" and not result.truncated  # proven: none exists
        assert result.reason is not None
        assert result.reason.endswith("the deep re-pack proved that no re-assignment seats it")
        return
    assert result.repack == "deep" and result.plans
    assert not result.truncated, "small models are solved to the proven fewest moves"
    assert len(result.moves) == fewest
    assert_valid_re_pack(snapshot, request, config, now, result)


def couple_on_the_six_top() -> RestaurantSnapshot:
    # A couple holds the only table for six; a table for two is free.
    return floor(table("T6", 6), table("T2", 2), allocations=(held("a", "T6", 0, party=2),))


def test_the_deep_search_runs_only_when_asked_and_only_after_the_others_gave_up() -> None:
    snapshot = couple_on_the_six_top()
    starved = replace(EXACT, **STARVED)
    first = search(snapshot, booking(6), starved, now=at(-600))
    assert first.plans == () and first.repack == "bounded"
    assert first.reason == (
        "all fitting tables are taken 19:00-21:00 UTC; re-packing undecided within its budget")
    deep = search(snapshot, booking(6), replace(starved, repack_deep_ms=5_000), now=at(-600))
    assert deep.repack == "deep"
    assert [(m.booking_id, m.to_tables) for m in deep.moves] == [("a", ("T2",))]
    assert deep.plans[0].tables == ("T6",)
    # with steps the exact search answers and the deep one never runs
    assert search(
        snapshot, booking(6), replace(EXACT, repack_deep_ms=5_000), now=at(-600)
    ).repack == "exact"


def test_the_deep_search_never_moves_a_frozen_or_hand_placed_booking() -> None:
    deep = replace(EXACT, **STARVED, repack_deep_ms=5_000)
    frozen = search(couple_on_the_six_top(), booking(6), deep, now=at(-59))
    assert frozen.plans == () and frozen.moves == ()
    by_hand = floor(
        table("T6", 6), table("T2", 2),
        allocations=(Allocation("a", "T6", at(0), at(120), 2, at(0), assignment_strategy="manual"),),
    )
    assert search(by_hand, booking(6), deep, now=at(-600)).plans == ()


def test_the_deep_search_says_infeasible_when_no_re_assignment_exists() -> None:
    # two couples, one table for six and one for two: the second couple has nowhere to go
    snapshot = floor(
        table("T6", 6), table("T2", 2),
        allocations=(held("a", "T6", 0, party=2), held("b", "T2", 0, party=2)),
    )
    fl = Floor(snapshot)
    movable = movable_bookings(fl, booking(6), at(-600), EXACT)
    outcome = deep_repack(fl, booking(6), EXACT, movable, 5_000)
    assert outcome.status == INFEASIBLE and outcome.candidate is None
    solved = deep_repack(
        Floor(couple_on_the_six_top()), booking(6), EXACT,
        movable_bookings(Floor(couple_on_the_six_top()), booking(6), at(-600), EXACT), 5_000,
    )
    assert solved.status == OPTIMAL and [m.booking_id for m in solved.moves] == ["a"]


def test_repack_deep_ms_must_be_positive() -> None:
    with pytest.raises(ValueError, match="repack_deep_ms"):
        EngineConfig(repack_deep_ms=0)
