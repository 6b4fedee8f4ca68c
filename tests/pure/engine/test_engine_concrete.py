"""Concrete seating cases from issue 3, one behaviour per test."""

from __future__ import annotations

from dataclasses import replace

from engine_floors import at, booking, floor, held, table

from seatflow.domain.planning import AdjacencyMode, EngineConfig, KnownBooking, ScoreWeights
from seatflow.engine import search


def test_party_of_five_takes_the_fixed_six_top_over_two_adjacent_three_tops() -> None:
    snapshot = floor(
        table("T6", 6, fixed=True), table("A3", 3), table("B3", 3), edges=(("A3", "B3"),)
    )
    result = search(snapshot, booking(5))
    assert result.plans[0].tables == ("T6",)
    assert ("A3", "B3") in [plan.tables for plan in result.plans]


def test_party_of_four_takes_the_four_top_not_the_six_top() -> None:
    result = search(floor(table("T4", 4), table("T6", 6)), booking(4))
    assert [plan.tables for plan in result.plans] == [("T4",), ("T6",)]


def test_party_of_seven_takes_two_adjacent_movable_four_tops() -> None:
    result = search(floor(table("A4", 4), table("B4", 4), edges=(("A4", "B4"),)), booking(7))
    assert result.plans[0].tables == ("A4", "B4")
    assert result.plans[0].strategy == "adjacency"


def test_party_of_nine_gets_nothing_when_only_two_of_three_four_tops_are_adjacent() -> None:
    snapshot = floor(table("A4", 4), table("B4", 4), table("C4", 4), edges=(("A4", "B4"),))
    result = search(snapshot, booking(9))
    assert result.plans == ()
    assert result.reason == "no table fits a party of 9"


def test_two_four_tops_without_an_adjacency_edge_are_never_merged() -> None:
    result = search(floor(table("A4", 4), table("B4", 4)), booking(6))
    assert result.plans == ()


def test_fixed_tables_are_never_merged() -> None:
    snapshot = floor(table("A4", 4, fixed=True), table("B4", 4), edges=(("A4", "B4"),))
    assert search(snapshot, booking(6)).plans == ()


def test_tables_of_different_zones_are_never_merged() -> None:
    snapshot = floor(table("A4", 4, "main"), table("B4", 4, "patio"), edges=(("A4", "B4"),))
    assert search(snapshot, booking(6)).plans == ()


def test_two_top_with_no_adjacency_at_all_still_seats_a_party_of_two() -> None:
    snapshot = floor(table("T2", 2), table("A4", 4), table("B4", 4), edges=(("A4", "B4"),))
    assert search(snapshot, booking(2)).plans[0].tables == ("T2",)


def test_party_of_two_never_takes_a_ten_top_when_max_overage_is_four() -> None:
    result = search(floor(table("T10", 10)), booking(2), EngineConfig(max_overage=4))
    assert result.plans == ()
    assert result.reason == "no table fits a party of 2"


def test_pairwise_rejects_a_chain_that_connected_accepts() -> None:
    snapshot = floor(table("A", 4), table("B", 4), table("C", 4), edges=(("A", "B"), ("B", "C")))
    connected = search(snapshot, booking(12), EngineConfig(adjacency_mode=AdjacencyMode.CONNECTED))
    pairwise = search(snapshot, booking(12), EngineConfig(adjacency_mode=AdjacencyMode.PAIRWISE))
    assert connected.plans[0].tables == ("A", "B", "C")
    assert pairwise.plans == ()


def test_plan_taking_the_only_eight_top_a_known_party_of_eight_needs_scores_worse() -> None:
    # T8 and V8 fit equally; V8 is held from 21:00, so the party of eight that
    # starts at 19:30 can only sit at T8.
    snapshot = floor(
        table("T8", 8),
        table("V8", 8),
        allocations=(held("later", "V8", 120, party=6),),
        known=(KnownBooking("eight", 8, at(30), at(150)),),
    )
    result = search(snapshot, booking(8, start=0, minutes=120))
    scores = {plan.tables: plan for plan in result.plans}
    assert scores[("T8",)].score > scores[("V8",)].score
    assert scores[("T8",)].breakdown["lookahead"] == 1.0
    assert result.plans[0].tables == ("V8",)


def test_taken_tables_give_a_reason_with_the_window() -> None:
    snapshot = floor(table("T4", 4), allocations=(held("other", "T4", -30),))
    result = search(snapshot, booking(4, start=0, minutes=105), EngineConfig(repack=False))
    assert result.reason == "all fitting tables are taken 19:00-20:45 UTC"
    # An operator reads it on the restaurant's clock, the zone named.
    paris = replace(snapshot, timezone="Europe/Paris")
    result = search(paris, booking(4, start=0, minutes=105), EngineConfig(repack=False))
    assert result.reason == "all fitting tables are taken 21:00-22:45 Europe/Paris"


def test_party_of_six_gets_the_six_top_by_moving_a_party_of_four_to_a_free_four_top() -> None:
    snapshot = floor(
        table("T6", 6),
        table("T4", 4),
        allocations=(held("four", "T6", -15, minutes=120, party=4),),
    )
    # the four starts 75 minutes after `now`: outside the default 60-minute freeze
    result = search(snapshot, booking(6), now=at(-90))
    assert result.plans[0].tables == ("T6",)
    assert result.plans[0].strategy == "repack"
    assert [(m.booking_id, m.from_tables, m.to_tables) for m in result.moves] == [
        ("four", ("T6",), ("T4",))
    ]


def test_a_booking_that_has_started_is_never_moved() -> None:
    snapshot = floor(
        table("T6", 6),
        table("T4", 4),
        allocations=(held("four", "T6", -15, minutes=120, party=4),),
    )
    result = search(snapshot, booking(6), now=at(-5))
    assert result.plans == () and result.moves == ()
    assert result.reason == "all fitting tables are taken 19:00-21:00 UTC"


def test_without_repacking_a_three_table_plan_waits_until_two_hours_before() -> None:
    """Without re-packing, three 4-tops for a party of ten only within
    `wide_plan_lead_minutes` (120) of the start: a plan made further ahead is
    final, and the small tables stay for small parties as the legacy planner
    keeps them. With re-packing (the default) nothing is held back: a later
    request can move the party."""
    snapshot = floor(
        table("A4", 4), table("B4", 4), table("C4", 4), edges=(("A4", "B4"), ("B4", "C4"))
    )
    request = booking(10)
    final = EngineConfig(repack=False)
    assert search(snapshot, request, final, now=at(-121)).plans == ()
    assert search(snapshot, request, final, now=at(-121)).reason == "no table fits a party of 10"
    assert search(snapshot, request, final, now=at(-120)).plans[0].tables == ("A4", "B4", "C4")
    assert search(snapshot, request, final).plans[0].tables == ("A4", "B4", "C4")  # no clock
    always = EngineConfig(repack=False, wide_plan_lead_minutes=None)
    assert search(snapshot, request, always, now=at(-600)).plans[0].tables == ("A4", "B4", "C4")
    assert search(snapshot, request, now=at(-600)).plans[0].tables == ("A4", "B4", "C4")
    # two tables are never held back
    assert search(snapshot, booking(8), final, now=at(-600)).plans[0].tables == ("A4", "B4")
    assert search(snapshot, booking(8), now=at(-600)).plans[0].tables == ("A4", "B4")


def test_a_booking_inside_the_freeze_window_takes_the_table_it_fits_most_snugly_in_time() -> None:
    """A booking placed within `repack_freeze_minutes` of its start can never be
    re-packed, so its plan is final: among equally good tables it takes the one
    that leaves the least unusable idle time (here B4, 10 minutes before the next
    party, against 25 on A4). Further ahead a later re-pack can still move it:
    without lookahead placement the tie breaks on table ids as before; with it
    (the default) B4 wins there too, as the table that blocks the fewest
    requests still to come (docs/engine.md, "Lookahead placement")."""
    snapshot = floor(
        table("A4", 4),
        table("B4", 4),
        allocations=(held("next-a", "A4", 145), held("next-b", "B4", 130)),
    )
    request = booking(1)  # 19:00-21:00
    frozen = search(snapshot, request, now=at(-45))
    assert frozen.plans[0].tables == ("B4",)
    assert frozen.plans[0].breakdown["idle_gap"] < frozen.plans[1].breakdown["idle_gap"]
    blind = EngineConfig(weights=replace(ScoreWeights(), demand=0.0))
    assert search(snapshot, request, blind, now=at(-61)).plans[0].tables == ("A4",)
    assert search(snapshot, request, blind).plans[0].tables == ("A4",)  # no clock
    assert search(snapshot, request, now=at(-61)).plans[0].tables == ("B4",)  # lookahead
    alone = replace(blind, repack=False)
    assert search(snapshot, request, alone, now=at(-45)).plans[0].tables == ("A4",)
    off = replace(blind, frozen_idle_gap=0.0)
    assert search(snapshot, request, off, now=at(-45)).plans[0].tables == ("A4",)
    longer = EngineConfig(repack_freeze_minutes=90)
    assert search(snapshot, request, longer, now=at(-61)).plans[0].tables == ("B4",)
