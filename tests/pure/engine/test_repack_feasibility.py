"""The exact re-packing search's feasibility-only mode (`FeasibilityRepacker`,
what availability asks): on small random floors it finds a re-assignment
exactly when the brute force over every re-assignment finds one, and what it
finds is valid and applies one move at a time; it never claims the fewest."""

from __future__ import annotations

from engine_floors import at, booking, floor, held, table
from hypothesis import event, given
from test_engine_properties import reference_valid_plans
from test_repack_exact import (
    SETTINGS,
    apply_as_one_set,
    crowded,
    grouped,
    may_move,
    repack_case,
    within_cap,
    zones_allowed,
)

from seatflow.domain.planning import EngineConfig, RestaurantSnapshot
from seatflow.engine.exact import ExactRepacker, FeasibilityRepacker
from seatflow.engine.floor import Floor
from seatflow.engine.repack import movable_bookings
from seatflow.engine.search import plan_config


@SETTINGS
@given(crowded())
def test_feasibility_under_a_move_cap_finds_one_exactly_when_that_few_moves_suffice(
    case: tuple,
) -> None:
    """Availability under SEATFLOW_REPACK_MAX_MOVES: a time is seatable only
    with a re-assignment of at most that many moves, as the pipeline books."""
    _, request, config, now = case
    config = plan_config(config, request, now)  # the rules at `now`, as search applies them
    asked = repack_case(case)
    if asked is None:
        return
    fl, movable, fewest = asked
    for cap in (1, 2):
        outcome = FeasibilityRepacker(fl, request, config, movable, move_cap=cap).run()
        assert not outcome.exhausted
        assert (outcome.candidate is not None) == (fewest is not None and fewest <= cap), cap
        assert len(outcome.moves) <= cap


@SETTINGS
@given(crowded())
def test_feasibility_finds_a_re_assignment_exactly_when_one_exists(case: tuple) -> None:
    snapshot, request, config, now = case
    config = plan_config(config, request, now)  # the rules at `now`, as search applies them
    asked = repack_case(case)
    if asked is None:
        return
    fl, movable, fewest = asked
    fewest = within_cap(fewest, config)  # the venue's cap holds here too
    outcome = FeasibilityRepacker(fl, request, config, movable).run()
    assert not outcome.exhausted, "small floors never exhaust the exact budget"
    event(f"re-assignment exists: {fewest is not None}")
    if fewest is None:
        assert outcome.candidate is None and outcome.moves == ()
        return
    assert outcome.candidate is not None, f"a re-assignment with {fewest} moves exists"
    assert len(outcome.moves) >= fewest and not outcome.fewest
    held_by = grouped(snapshot)
    zone_of = {t.id: t.zone for t in snapshot.tables}
    for move in outcome.moves:
        allocs = held_by[move.booking_id]
        assert may_move(snapshot, allocs, request, now)
        assert {zone_of[t] for t in move.to_tables} <= zones_allowed(snapshot, allocs)
    after = apply_as_one_set(snapshot, outcome.moves)
    final = RestaurantSnapshot("r", snapshot.tables, snapshot.adjacency, tuple(after))
    assert outcome.candidate.tables in reference_valid_plans(final, request, config)
    # the same question to the fewest-moves search gets the same yes
    full = ExactRepacker(fl, request, config, movable).run()
    assert full.candidate is not None and len(full.moves) == fewest


def test_feasibility_stops_at_the_first_re_assignment_and_says_so_when_out_of_steps() -> None:
    # A couple holds the only table for six; two tables for two are free.
    snapshot = floor(
        table("T1", 6), table("T2", 2), table("T3", 2),
        allocations=(held("a", "T1", 0, party=2),),
    )
    request = booking(6, 0)
    config = EngineConfig(max_tables=1, repack_safety_stop_ms=None)
    fl = Floor(snapshot)
    now = at(-600)
    movable = movable_bookings(fl, request, now, config)
    outcome = FeasibilityRepacker(fl, request, config, movable).run()
    assert outcome.candidate is not None and outcome.candidate.tables == ("T1",)
    assert [m.booking_id for m in outcome.moves] == ["a"] and outcome.moves[0].to_tables == ("T2",)
    starved = EngineConfig(max_tables=1, repack_safety_stop_ms=None, max_exact_steps=0)
    out = FeasibilityRepacker(fl, request, starved, movable).run()
    assert out.exhausted and out.candidate is None
