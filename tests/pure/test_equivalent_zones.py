"""A floor plan may declare zones equivalent (`equivalent_zones`, docs/floorplan.md):
validated against the plan's zones, carried to the engine as
`RestaurantSnapshot.zone_groups`, and counted by the bench as one zone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from seatflow.domain.planning import Move, RestaurantSnapshot, Table
from seatflow.floorplan import FloorPlanError, parse_floorplan

BENCH = Path(__file__).resolve().parents[2] / "bench"


def plan(groups: Any) -> dict[str, Any]:
    return {
        "restaurant": {
            "id": "eq", "name": "Eq", "timezone": "UTC",
            "services": [{"name": "dinner", "start": "17:00", "end": "23:00",
                          "turn_times": [{"max_party": None, "minutes": 90}]}],
        },
        "zones": [{"id": z, "name": z.title()} for z in ("main", "window", "patio", "bar")],
        "tables": [{"id": "T1", "capacity": 2, "zone": "main"}],
        "equivalent_zones": groups,
    }


def problems(groups: Any) -> list[str]:
    with pytest.raises(FloorPlanError) as caught:
        parse_floorplan(plan(groups), "plan.json")
    return caught.value.problems


def test_groups_are_kept_sorted_and_default_to_none() -> None:
    parsed = parse_floorplan(plan([["window", "main"], ["patio", "bar"]]))
    assert parsed.zone_groups == [["bar", "patio"], ["main", "window"]]
    data = plan([])
    del data["equivalent_zones"]
    assert parse_floorplan(data).equivalent_zones == []


def test_an_unknown_zone_is_named_with_its_path() -> None:
    assert problems([["main", "cellar"]]) == [
        "equivalent_zones[0][1]: unknown zone 'cellar'"
    ]


def test_a_zone_belongs_to_one_group() -> None:
    merge = (
        "equivalent_zones[1][0]: zone 'window' is already in equivalent_zones[0] "
        "(a zone belongs to one group: merge the two)"
    )
    assert problems([["main", "window"], ["window", "patio"]]) == [merge]
    assert problems([["main", "main"]]) == [
        "equivalent_zones[0][1]: zone 'main' is already in this group"
    ]


def test_a_group_names_two_zones_or_more() -> None:
    found = problems([["main"]])
    assert len(found) == 1 and found[0].startswith("equivalent_zones[0]: ")
    assert "at least 2" in found[0]
    assert problems("main") == ["equivalent_zones: must be a valid list"]


def test_every_problem_is_reported_at_once() -> None:
    data = plan([["main", "cellar"]])
    data["tables"][0]["capacity"] = 0
    with pytest.raises(FloorPlanError) as caught:
        parse_floorplan(data)
    assert "equivalent_zones[0][1]: unknown zone 'cellar'" in caught.value.problems
    assert any(p.startswith("tables[0].capacity") for p in caught.value.problems)


def test_the_snapshot_names_a_zone_with_those_equivalent_to_it() -> None:
    snapshot = RestaurantSnapshot("r", (), (), zone_groups=(("main", "window"),))
    assert snapshot.same_zone("window") == ("main", "window")
    assert snapshot.same_zone("patio") == ("patio",)


def test_the_bench_counts_a_move_within_a_group_as_no_zone_change() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from policies import Moves
    finally:
        sys.path.remove(str(BENCH))
    snapshot = RestaurantSnapshot(
        "r",
        (Table("M1", 2, "main"), Table("W1", 2, "window"), Table("P1", 2, "patio")),
        (),
        zone_groups=(("main", "window"),),
    )
    moves = Moves.on(snapshot)
    held = {"a": ("M1",), "b": ("W1",)}
    moves.apply(held, (Move("a", ("M1",), ("W1",)),))
    assert (moves.zone_changes, moves.within_group) == (0, 1)
    moves.apply(held, (Move("b", ("W1",), ("P1",)),))
    assert (moves.zone_changes, moves.within_group) == (1, 1)
    assert moves.summary(2)["moves_within_zone_group"] == 1


def test_the_bench_family_declares_a_dining_room_group_on_every_fourth_floor() -> None:
    """`workload.family_floor`: floors 4, 8, ... group their main room with the
    next dining zone, so the family's re-packs move guests within a group; the
    other floors declare none, and the groups take nothing from the floors'
    random draws (the same tables as without them)."""
    sys.path.insert(0, str(BENCH))
    try:
        from workload import family_floor
    finally:
        sys.path.remove(str(BENCH))
    for seed in range(1, 21):
        floor, _mix = family_floor(seed)
        zones = {t.zone for t in floor.tables}
        if seed % 4:
            assert floor.zone_groups == ()
            continue
        assert len(floor.zone_groups) == 1, floor.restaurant_id
        (group,) = floor.zone_groups
        assert group == tuple(sorted(group)) and set(group) <= zones
        assert "grid0" in group
        assert not any(z.startswith(("bar", "booths")) for z in group)
    assert len(family_floor(4)[0].tables) == 26  # as before the groups
