"""Availability's re-packing stage: the start times without a free plan.

`decide_unseated` decides each of them yes (a re-assignment of bookings that
have not started, checked from scratch by `witness_problem`), no (a proof: no
table set fits, nothing may move, or the exact search found none), or not
within the stage's step budget (undecided: not offered). The budget is
`EngineConfig.availability_repack_steps` steps in total, so the same snapshot
gets the same decisions on any machine; the wall clock is only a safety stop
(`repack_safety_stop_ms` over the whole stage), and when it fires the result
says so (`Unseated.safety_stop`, and the times it left undecided are
SAFETY_STOP). `seatflow.engine.availability` runs it after the free-plan check
and turns its decisions into slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from seatflow.domain.planning import BookingRequest, EngineConfig, Move

from .combinations import enumerate_plans
from .exact import ExactOutcome, FeasibilityRepacker
from .exact_problem import HeldBooking, clock
from .floor import Floor, overlaps, taken_reason
from .repack import bounded_repack, movable_bookings
from .search import no_plan_reason, plan_config
from .validation import plan_problem

UNDECIDED = (
    "re-seating bookings that have not started was not decided within the availability "
    "search's budget"
)
STOPPED = "the availability search's wall-clock safety stop fired (the machine is overloaded)"
# The bounded re-packing search's step limit in the first, cheap round.
QUICK_STEPS = 100
MAX_REUSE = 4  # neighbouring re-assignments re-checked per start time

# How each start time was decided (`Evaluation.counts` keys).
FREE = "free"  # a valid plan among the free tables
REPACK = "repack"  # a re-assignment found for this start time (verified)
REUSED = "reused"  # another start time's re-assignment, verified for this one
NONE = "none"  # proven not seatable (no table fits, nothing may move, or the exact proof)
SEARCHED = "undecided_searched"  # searched, nothing found, no proof: not offered
NOT_REACHED = "undecided_not_reached"  # the budget ran out before any search: not offered
# the wall-clock safety stop fired before this time was decided: not offered (the
# step budget alone might have decided it; on a healthy machine this never happens)
SAFETY_STOP = "undecided_safety_stop"
INVALID = "invalid"  # the intake rules refuse the time (past, outside service)
OFFERED = (FREE, REPACK, REUSED)
NOT_DECIDED = (SEARCHED, NOT_REACHED, SAFETY_STOP)


@dataclass(frozen=True)
class Witness:
    """A re-assignment that seats the probe: its tables, and the moves that free them."""

    tables: tuple[str, ...]
    moves: tuple[Move, ...]


@dataclass(frozen=True)
class Decision:
    """How one start time was decided (a counts key), and why not, for people."""

    how: str
    reason: str | None = None


@dataclass(frozen=True)
class Unseated:
    """`decide_unseated`'s answer: one decision per pending start time, the
    steps the stage spent (at most `availability_repack_steps`, give or take
    one search's last step), and whether the wall-clock safety stop fired."""

    decisions: list[Decision]
    steps: int = 0
    safety_stop: bool = False


def fits(floor: Floor, party: int, tables: Iterable[str], config: EngineConfig) -> bool:
    return bool(enumerate_plans(floor, party, tables, config).candidates)


def decide_unseated(
    floor: Floor,
    party: int,
    config: EngineConfig,
    now: datetime,
    pending: Sequence[BookingRequest],
    available: Sequence[datetime],
) -> Unseated:
    """Steps 2 and 3 of `evaluate_counted` for the start times without a free
    plan (`pending`, the probe's request at each), one decision each, in order.
    `available` holds the start times already offered (they order the work).

    The step budget (`config.availability_repack_steps`) is spent breadth
    first, cheapest first, so that no start time waits behind an expensive one
    (and those nearest an available time go first in each round): a round of
    the bounded search with QUICK_STEPS steps over every open time, a round
    with the configured `max_repack_steps` over those it cut short, then the
    exact search in its feasibility-only mode; each search gets at most the
    steps left, and what it spent is subtracted. Before each attempt the
    re-assignments found so far are re-checked for that time. The wall clock
    (`repack_safety_stop_ms` for the whole stage, None: none) only stops the
    stage on an overloaded machine, and says so."""
    stop_ms = config.repack_safety_stop_ms
    deadline = None if stop_ms is None else clock() + stop_ms / 1000
    if not fits(floor, party, floor.usable, config) or not config.repack:
        return Unseated([
            Decision(NONE, no_plan_reason(floor, request, plan_config(config, request, now)))
            for request in pending
        ])
    decided: list[Decision | None] = [None] * len(pending)
    # Movability does not depend on the window except by overlap: find the
    # movable bookings once for a window spanning every pending start time.
    span = BookingRequest(
        pending[0].booking_id, party, min(r.start for r in pending), max(r.end for r in pending)
    )
    evening = movable_bookings(floor, span, now, config)
    opened: list[_Open] = []
    for index, request in enumerate(pending):
        movable = {
            b: held for b, held in evening.items()
            if overlaps(held.start, held.end, request.start, request.end)
        }
        if movable:
            # the re-packing rules for this start time (`repack_snug` by its lead)
            opened.append(_Open(index, request, movable, plan_config(config, request, now)))
        else:
            decided[index] = Decision(NONE, taken_reason(floor, request))
    anchors = list(available)
    found: list[tuple[datetime, Witness]] = []
    budget = _Budget(config.availability_repack_steps, deadline)

    def seat(item: _Open, witness: Witness, how: str) -> None:
        found.append((item.request.start, witness))
        anchors.append(item.request.start)
        decided[item.index] = Decision(how)
        item.done = True

    quick = replace(config, max_repack_steps=min(QUICK_STEPS, config.max_repack_steps))
    rounds = [quick] if quick == config else [quick, config]
    for round_config in rounds:
        for item in _nearest_first(opened, anchors):
            if item.done or not item.cut or budget.spent():
                continue
            witness = _reuse(floor, item.request, item.rules, item.movable, found)
            if witness is not None:
                seat(item, witness, REUSED)
                continue
            steps = min(round_config.max_repack_steps, budget.left)
            rules = replace(
                round_config, max_repack_steps=steps, repack_snug=item.rules.repack_snug
            )
            repacked = bounded_repack(floor, item.request, rules, item.movable)
            budget.pay(repacked.steps)
            item.searched, item.cut = True, repacked.truncated
            if repacked.plan is not None:
                candidate = Witness(repacked.plan.tables, repacked.moves)
                if witness_problem(floor, item.request, item.rules, item.movable, candidate) is None:
                    seat(item, candidate, REPACK)
    # The exact search decides what the bounded one could not, yes or a proof of
    # no, within the steps left (and its own per-search budget).
    for item in _nearest_first(opened, anchors):
        if item.done:
            continue
        witness = _reuse(floor, item.request, item.rules, item.movable, found)
        if witness is not None:
            seat(item, witness, REUSED)
            continue
        if budget.spent():
            continue
        outcome = _feasible(floor, item.request, item.rules, item.movable, budget)
        item.searched = True
        if outcome.exhausted:
            continue
        if outcome.candidate is None:  # a proof: no re-assignment exists
            decided[item.index] = Decision(NONE, taken_reason(floor, item.request))
            item.done = True
            continue
        candidate = Witness(outcome.candidate.tables, outcome.moves)
        if witness_problem(floor, item.request, item.rules, item.movable, candidate) is None:
            seat(item, candidate, REPACK)
    for item in opened:
        if item.done:
            continue
        if budget.safety_stop and budget.left > 0:  # the clock, not the steps, stopped it
            how, why = SAFETY_STOP, STOPPED
        else:
            how, why = (SEARCHED if item.searched else NOT_REACHED), UNDECIDED
        decided[item.index] = Decision(how, f"{taken_reason(floor, item.request)}; {why}")
    return Unseated(
        [decision for decision in decided if decision is not None],
        steps=budget.total - budget.left, safety_stop=budget.safety_stop,
    )


class _Budget:
    """The stage's steps left, and its wall-clock safety stop."""

    def __init__(self, total: int, deadline: float | None) -> None:
        self.total = total
        self.left = total
        self.deadline = deadline
        self.safety_stop = False  # the wall clock stopped the stage

    def pay(self, steps: int) -> None:
        self.left = max(0, self.left - steps)

    def spent(self) -> bool:
        """No steps left, or (checked only while steps are) past the safety stop."""
        if self.left <= 0 or self.safety_stop:
            return True
        if self.deadline is not None and clock() > self.deadline:
            self.safety_stop = True
        return self.safety_stop

    def stop_ms(self) -> float | None:
        """What is left of the safety stop, for one exact search's own stop."""
        if self.deadline is None:
            return None
        return max(0.0, (self.deadline - clock()) * 1000)


@dataclass
class _Open:
    """A start time without a free plan, still being decided."""

    index: int
    request: BookingRequest
    movable: dict[str, HeldBooking]
    rules: EngineConfig  # the config's plan rules for this start time (plan_config)
    done: bool = False
    searched: bool = False  # a re-packing search ran for it
    cut: bool = True  # the last bounded search stopped at its step limit (or none ran)


def _nearest_first(opened: list[_Open], anchors: list[datetime]) -> list[_Open]:
    """The open start times, those nearest an available one first (re-packing
    succeeds most often at the edge of a full stretch, and what it finds there
    serves the next time in by re-checking), then in time order."""

    def distance(item: _Open) -> float:
        start = item.request.start
        return min((abs((a - start).total_seconds()) for a in anchors), default=0.0)

    return sorted(opened, key=lambda item: (distance(item), item.request.start))


def _feasible(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    budget: _Budget,
) -> ExactOutcome:
    """The exact search's feasibility-only answer on at most the stage's steps
    left (and its own `max_exact_steps`), its safety stop what is left of the
    stage's; the steps it spent are paid."""
    stop_ms = budget.stop_ms()
    bounded = replace(
        config,
        max_exact_steps=min(config.max_exact_steps, budget.left),
        repack_safety_stop_ms=stop_ms,
    )
    outcome = FeasibilityRepacker(floor, request, bounded, movable).run()
    budget.pay(outcome.steps)
    if outcome.safety_stop:
        budget.safety_stop = True
    return outcome


def _reuse(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    found: list[tuple[datetime, Witness]],
) -> Witness | None:
    """The first of the MAX_REUSE re-assignments found nearest in time that is
    valid for `request` too."""
    nearest = sorted(found, key=lambda f: (abs((f[0] - request.start).total_seconds()), f[0]))
    for _, witness in nearest[:MAX_REUSE]:
        if witness_problem(floor, request, config, movable, witness) is None:
            return witness
    return None


def witness_problem(
    floor: Floor,
    request: BookingRequest,
    config: EngineConfig,
    movable: dict[str, HeldBooking],
    witness: Witness,
) -> str | None:
    """None when `witness` seats `request`, checked from scratch: the request's
    tables and every moved booking's new tables are a valid plan (the plan
    rules `validate_plan` applies) on tables no booking that stays holds in its
    window; only bookings re-packing may move for `request` move, each from
    the tables it holds, each into a zone it may use (its own, or the one it
    asked for), at most `repack_max_moves` of them, none given an empty seat
    under `repack_snug` (the request's plan no more seats than its party, a
    moved booking no more than it holds); no two seated bookings whose windows
    overlap share a table (the moves apply as one set, so a swap is as valid
    as a chain)."""
    moved = {m.booking_id for m in witness.moves}
    if len(moved) != len(witness.moves):
        return "a booking is moved twice"
    cap = config.repack_max_moves
    if cap is not None and len(moved) > cap:
        return f"{len(moved)} bookings moved, at most {cap} allowed"
    snug = config.repack_snug and bool(witness.moves)

    def seats(tables: Sequence[str]) -> int:
        return sum(floor.tables[t].capacity for t in tables if t in floor.tables)

    if snug and seats(witness.tables) > request.party_size:
        return f"{', '.join(witness.tables)} leaves seats empty (re-packing adds none)"
    seated: list[tuple[str, datetime, datetime, tuple[str, ...]]] = []
    problem = plan_problem(floor, request, witness.tables, config, ignore_bookings=tuple(moved))
    if problem is not None:
        return problem
    seated.append((request.booking_id, request.start, request.end, tuple(witness.tables)))
    for move in witness.moves:
        held = movable.get(move.booking_id)
        if held is None:
            return f"booking {move.booking_id} may not move"
        if tuple(sorted(move.from_tables)) != held.tables:
            return f"booking {move.booking_id} does not hold {', '.join(move.from_tables)}"
        moved_request = BookingRequest(move.booking_id, held.party, held.start, held.end)
        problem = plan_problem(
            floor, moved_request, move.to_tables, config, ignore_bookings=tuple(moved)
        )
        if problem is not None:
            return problem
        if snug and seats(move.to_tables) > seats(held.tables):
            return f"booking {move.booking_id} would get more seats than it holds"
        zones = {floor.tables[t].zone for t in move.to_tables}
        if not zones <= set(held.zones):
            return f"booking {move.booking_id} may not move to zone {', '.join(sorted(zones))}"
        seated.append((move.booking_id, held.start, held.end, tuple(move.to_tables)))
    for i, (a, a_start, a_end, a_tables) in enumerate(seated):
        for b, b_start, b_end, b_tables in seated[i + 1:]:
            shared = set(a_tables) & set(b_tables)
            if shared and overlaps(a_start, a_end, b_start, b_end):
                return f"{a} and {b} both get {', '.join(sorted(shared))}"
    return None
