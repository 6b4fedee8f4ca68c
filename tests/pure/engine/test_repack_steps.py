"""Budgets in steps, not milliseconds: the same snapshot and request give the
same answer every time, in any input order and on a machine of any speed.
The wall clock is only a safety stop, and when it fires the result says so."""

from __future__ import annotations

from dataclasses import replace
from unittest import mock

from engine_floors import at, booking, examples
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_repack_exact import UNCAPPED, crowded, four_move_chain

from seatflow.domain.planning import RestaurantSnapshot
from seatflow.engine import exact_problem, search

SETTINGS = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class SlowClock:
    """The engine's clock on a slow machine: every read is `per_read` seconds
    after the one before, whatever the real time."""

    def __init__(self, per_read: float) -> None:
        self.now = 0.0
        self.per_read = per_read

    def __call__(self) -> float:
        self.now += self.per_read
        return self.now


@SETTINGS
@given(crowded(), st.randoms(use_true_random=False), st.booleans())
def test_a_re_pack_is_the_same_every_time_and_in_any_input_order(
    case: tuple, rng, bounded: bool
) -> None:
    snapshot, request, config, now = case
    # the deployed budgets (safety stop included); or the exact search starved,
    # so that the bounded search decides
    config = replace(config, repack_safety_stop_ms=250.0)
    if bounded:
        config = replace(config, max_exact_steps=0)
    first = search(snapshot, request, config, now=now)
    event(f"re-pack: {first.repack or 'none'}")
    shuffled = replace(
        snapshot,
        tables=tuple(rng.sample(snapshot.tables, len(snapshot.tables))),
        adjacency=tuple(rng.sample(snapshot.adjacency, len(snapshot.adjacency))),
        allocations=tuple(rng.sample(snapshot.allocations, len(snapshot.allocations))),
    )
    assert search(snapshot, request, config, now=now) == first
    assert search(shuffled, request, config, now=now) == first
    assert not first.safety_stop


@SETTINGS
@given(crowded())
def test_a_slow_machine_gets_the_same_answer_unless_the_safety_stop_fires_and_says_so(
    case: tuple,
) -> None:
    """32 steps in 5 ms (about 150 times slower than the bench machine): the
    old 20 ms budget would have cut the exact search after about 128 steps;
    now the step budget decides, and only the 250 ms safety stop (about 1,600
    steps here), reported, can change the answer."""
    snapshot, request, config, now = case
    steps_only = search(snapshot, request, config, now=now)  # no safety stop at all
    with mock.patch.object(exact_problem, "clock", SlowClock(0.005)):
        slow = search(snapshot, request, replace(config, repack_safety_stop_ms=250.0), now=now)
    event(f"safety stop fired: {slow.safety_stop}")
    event(f"past the old budget's 128 steps: {steps_only.evaluated > 128}")
    if slow.safety_stop:
        assert slow.repack == "bounded" and slow.truncated
    else:
        assert slow == steps_only


def test_the_safety_stop_fires_only_far_above_the_normal_time_and_is_reported() -> None:
    """A clock advancing 20 ms at every read (once per 32 steps): the exact
    search of a 4-move chain reads it three times. The old 20 ms budget would
    have stopped it and let the bounded search (at most 3 moves) refuse; the
    250 ms safety stop does not fire and the answer is the exact one."""
    snapshot: RestaurantSnapshot = four_move_chain()
    config = replace(UNCAPPED, max_overage=1)
    steps_only = search(snapshot, booking(6), config, now=at(-600))
    assert steps_only.repack == "exact" and len(steps_only.moves) == 4
    with mock.patch.object(exact_problem, "clock", SlowClock(0.020)):
        slow = search(
            snapshot, booking(6), replace(config, repack_safety_stop_ms=250.0), now=at(-600)
        )
    assert slow == steps_only and not slow.safety_stop
    with mock.patch.object(exact_problem, "clock", SlowClock(0.020)):
        stopped = search(
            snapshot, booking(6), replace(config, repack_safety_stop_ms=20.0), now=at(-600)
        )
    assert stopped.safety_stop and stopped.repack == "bounded" and stopped.plans == ()
    assert stopped.reason is not None
    assert stopped.reason.endswith(
        "re-packing undecided within its budget (a wall-clock safety stop fired)"
    )

