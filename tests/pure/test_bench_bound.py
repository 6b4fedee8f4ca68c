"""The bench's account of the online bound (bench/yardsticks.py): one summary of
a cell's bound for the shapes and the family (`bound_summary`), and what would
have seated a request the pipeline refused (`policies.refusal_cause`, behind
`bench/engine.py --attribute` and `bench/diverge.py --bound`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from seatflow.domain.planning import RestaurantSnapshot, Table

BENCH = Path(__file__).resolve().parents[2] / "bench"
MEAL = datetime(2026, 6, 12, 19, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        import policies
        import workload
        import yardsticks
    finally:
        sys.path.remove(str(BENCH))
    yield {"policies": policies, "workload": workload, "yardsticks": yardsticks}


def bound(covers: int, most: float, **extra: Any) -> dict[str, Any]:
    fields = ("bookings", "cpsat_solves", "cpsat_accepted", "undecided", "undecided_covers",
              "moves", "most_moves", "repacks_over_3_moves", "cpu_seconds")
    return {**dict.fromkeys(fields, 1), "covers": covers, "cpsat_most_seconds": most, **extra}


def test_one_summary_of_the_bound_for_a_shape_and_a_family_cell(
    bench: dict[str, ModuleType],
) -> None:
    ys = bench["yardsticks"]
    rows = [bound(10, 0.5), bound(13, 1.25, cached=True),
            bound(14, 0.0, cached=True, other_code=True)]
    shape = ys.bound_summary(rows)
    assert list(shape) == list(ys.BOUND_FIELDS)
    assert shape["covers"] == 12.3333 and shape["moves"] == 1
    assert shape["cpsat_most_seconds"] == 1.25  # the longest solve, not a mean
    family = ys.bound_summary(rows, ("covers", "cpsat_most_seconds", "cached",
                                     "cached_other_code"))
    assert family == {"covers": 12.3333, "cpsat_most_seconds": 1.25, "cached": 2,
                      "cached_other_code": 1}
    assert ys.bound_summary([], ("cpsat_most_seconds", "covers")) == {
        "cpsat_most_seconds": 0.0, "covers": 0.0}


def refused(bench: dict[str, ModuleType], asked: timedelta) -> str:
    """A couple holds the 4-top, the 2-top is free; a party of 3 asked `asked`
    before the meal: only moving the couple onto the 2-top seats it, on the
    4-top with an empty seat."""
    workload, policies = bench["workload"], bench["policies"]
    floor = RestaurantSnapshot("tiny", (Table("T2", 2, "main"), Table("T4", 4, "main")), ())
    end = MEAL + timedelta(minutes=90)
    couple = workload.Request("a", 2, MEAL, end, MEAL - timedelta(days=3))
    three = workload.Request("b", 3, MEAL, end, MEAL - asked)
    by_id = {"a": couple, "b": three}
    held = {"a": ("T4",)}
    snapshot = workload.allocations_of(floor, held, by_id)
    assert not policies.search(snapshot, three.booking(), policies.FIRST,
                               now=three.asked_at).plans  # the pipeline refuses it
    return str(policies.refusal_cause(floor, held, by_id, {}, three))


def test_a_refusal_is_put_down_to_the_rule_that_alone_would_lift_it(
    bench: dict[str, ModuleType],
) -> None:
    # days ahead: the re-pack leaves an empty seat on the 4-top
    assert refused(bench, timedelta(days=2)) == "empty-seat rule"
    # 30 minutes ahead the empty-seat rule is lifted; the couple is frozen
    assert refused(bench, timedelta(minutes=30)) == "freeze"
