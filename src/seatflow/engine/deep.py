"""Deep re-packing: CP-SAT decides what the exact search's budget left undecided.

The exact search (`exact.py`) answers within its step budget, or runs out of
steps. On a large floor at high load it runs out on many requests, and some
of those have a re-assignment that moves several bookings, often as a swap
(bookings trading tables), which the step budget does not reach. With
`EngineConfig.repack_deep_ms` set, such a request gets one more chance: the
same problem (the same movable bookings, the same plans, the same zone rules,
the same cap on moves) as a CP-SAT model from OR-Tools, minimising the
bookings moved, then the new booking outside its preferred zone.

Deterministic: one worker, a fixed seed and CP-SAT's deterministic time
limit (`max_deterministic_time`, `repack_deep_ms` / 1000 of its seconds) decide,
so the same evening gives the same answer on any machine. The wall clock is
only a safety stop at DEEP_WALL_FACTOR times that budget; when it fires the
outcome says so (`safety_stop`).

Model: a boolean per (booking, plan), exactly one plan per booking (for a
movable booking, staying on its own tables is one of them); per table and per
instant where the set of bookings in the room grows, at most one booking holds
the table (two windows overlap iff both contain the later start); at most
`repack_max_moves` bookings off their own tables. The moves come back in an
order that applies one at a time where one exists; a swap has none, and the
database applies the moves as one set (`storage.placement`), so it is as good
an answer as a chain.

Off by default (None): it costs up to the budget on every request it runs for
(on a busy evening a third to a half of them), so the booking workflow turns
it on for its retries only (`Settings.repack_deep_ms`), never for the first
attempt, availability or other latency-bound callers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from seatflow.domain.planning import BookingRequest, EngineConfig, Move

from .combinations import Candidate
from .exact import ExactRepacker, application_order
from .exact_problem import HeldBooking, clock
from .floor import Floor

# The wall-clock safety stop, as a multiple of the deterministic budget: far
# above the wall time the deterministic limit takes on a loaded machine.
DEEP_WALL_FACTOR = 4.0


@dataclass(frozen=True)
class DeepOutcome:
    candidate: Candidate | None  # R's plan, None when none was found
    moves: tuple[Move, ...]  # in the order they can be applied
    status: str  # "found", "optimal" (fewest moves proven), "infeasible", "unknown"
    wall_ms: float
    safety_stop: bool = False  # the wall-clock safety stop ended it, not the budget


FOUND, OPTIMAL, INFEASIBLE, UNKNOWN = "found", "optimal", "infeasible", "unknown"


def deep_repack(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    budget_ms: float,
) -> DeepOutcome:
    """A re-assignment of `movable` that frees a plan for `request`, fewest
    moves first, at most `config.repack_max_moves` of them, within `budget_ms`
    of CP-SAT's deterministic time (see the module docstring)."""
    from ortools.sat.python import cp_model  # imported here: a second to load

    began = clock()

    def elapsed() -> float:
        return (clock() - began) * 1000

    # The exact search's own view of the problem: the same windows, fixed
    # allocations, zones and plans (its step budget plays no part here).
    view = ExactRepacker(
        floor, request, replace(config, max_exact_steps=1 << 62, repack_safety_stop_ms=None),
        movable,
    )
    n = view.n
    choices: list[list[tuple[int, Candidate | None]]] = []  # (mask, plan); None: stays
    for i in range(n + 1):
        options: list[tuple[int, Candidate | None]] = [
            (o.mask, o.candidate) for o in view.options(i)
        ]
        if i < n:
            options.insert(0, (view.current[i], None))
        if not options:
            return DeepOutcome(None, (), INFEASIBLE, elapsed())
        choices.append(options)

    model = cp_model.CpModel()
    chosen: list[list[Any]] = []
    holding: list[dict[int, list[Any]]] = []  # per booking: table bit -> variables
    for i, options in enumerate(choices):
        variables = [model.new_bool_var(f"b{i}p{k}") for k in range(len(options))]
        model.add_exactly_one(variables)
        chosen.append(variables)
        per_table: dict[int, list[Any]] = {}
        for (mask, _), var in zip(options, variables, strict=True):
            while mask:
                bit = mask & -mask
                mask ^= bit
                per_table.setdefault(bit, []).append(var)
        holding.append(per_table)
    for group in view.instants:
        if len(group) < 2:
            continue
        tables: dict[int, list[Any]] = {}
        for i in group:
            for bit, variables in holding[i].items():
                tables.setdefault(bit, []).extend(variables)
        for variables in tables.values():
            if len(variables) > 1:
                model.add_at_most_one(variables)
    preferred = request.zone_preference
    moved = [1 - chosen[i][0] for i in range(n)]
    elsewhere = [
        var
        for (_, candidate), var in zip(choices[n], chosen[n], strict=True)
        if preferred is not None and candidate is not None and candidate.zone != preferred
    ]
    if config.repack_max_moves is not None and n > config.repack_max_moves:
        model.add(sum(moved) <= config.repack_max_moves)
    # fewest moves, then R in its preferred zone
    model.minimize(2 * sum(moved) + sum(elsewhere))
    for i in range(n):
        model.add_hint(chosen[i][0], True)

    solver = cp_model.CpSolver()
    parameters = solver.parameters
    parameters.num_workers = 1  # one worker searches the same way every time
    parameters.random_seed = 1
    parameters.max_deterministic_time = budget_ms / 1000
    wall_s = DEEP_WALL_FACTOR * budget_ms / 1000
    parameters.max_time_in_seconds = wall_s
    status = solver.solve(model)
    # Unproven, the deterministic budget not spent and the wall time up: the
    # safety stop ended it, not the budget.
    stopped = (
        status not in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
        and solver.deterministic_time < parameters.max_deterministic_time
        and solver.wall_time >= 0.95 * wall_s
    )
    if status == cp_model.INFEASIBLE:
        return DeepOutcome(None, (), INFEASIBLE, elapsed())
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return DeepOutcome(None, (), UNKNOWN, elapsed(), safety_stop=stopped)
    picks = [next(k for k, v in enumerate(chosen[i]) if solver.value(v)) for i in range(n + 1)]
    applied = [
        (view.bookings[i], _tables_of(floor, choices[i][picks[i]][0]))
        for i in range(n)
        if picks[i] != 0
    ]
    # one at a time where that order exists; a swap is applied as a set
    ordered = application_order(floor, applied) or applied
    candidate = choices[n][picks[n]][1]
    assert candidate is not None  # R has no "stay" option
    moves = tuple(Move(b.booking_id, b.tables, new) for b, new in ordered)
    found = OPTIMAL if status == cp_model.OPTIMAL else FOUND
    return DeepOutcome(candidate, moves, found, elapsed(), safety_stop=stopped)


def _tables_of(floor: Floor, mask: int) -> tuple[str, ...]:
    return tuple(t for t in floor.order if floor.bit[t] & mask)
