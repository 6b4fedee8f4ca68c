"""Shadow mode (docs/deploy.md, the rollout): the V3 pipeline replayed in memory beside
the legacy path, and its comparison with what the legacy path did.

Pure values and functions only: these cross the Temporal boundary and are
imported by workflow code. Nothing here touches the database or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seatflow.domain.planning import Move, RestaurantSnapshot
from seatflow.domain.restaurant import RestaurantPolicy
from seatflow.domain.states import AssignmentState, check_transition

SEATED = "seated"
NOT_SEATED = "not_seated"
OUTCOMES = (SEATED, NOT_SEATED)

EVENT_SOURCE = "assignment.shadow"
COMPARISON_EVENT = "assignment.shadow.comparison"
ERROR_EVENT = "assignment.shadow.error"

S = AssignmentState


@dataclass(frozen=True)
class ShadowInput:
    """What the booking workflow hands its shadow child after the legacy path."""

    booking_id: str
    restaurant_id: str
    legacy_outcome: str  # "seated" | "not_seated"
    legacy_tables: tuple[str, ...] = ()
    legacy_reason: str | None = None
    # ISO 8601 time of the legacy path's last quote: the snapshot to rebuild is
    # the floor as it was then, the booking's own allocation excluded.
    as_of: str = ""


@dataclass(frozen=True)
class ShadowFloor:
    """The booking and the floor as the legacy path saw them at `as_of`."""

    restaurant_id: str
    party_size: int
    start: datetime
    end: datetime  # occupied until (end of the turn plus the buffer)
    zone_preference: str | None
    policy: RestaurantPolicy | None  # None: the restaurant is unknown
    snapshot: RestaurantSnapshot


@dataclass(frozen=True)
class ShadowEvent:
    """A comparison or error event as stored, newest first when listed."""

    booking_id: str | None
    restaurant_id: str | None
    context: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class ShadowSearch:
    """The V3 engine's answer on the reconstructed snapshot (read-only activity)."""

    booking_id: str
    restaurant_id: str
    party_size: int
    as_of: str  # the snapshot time actually used (ISO 8601)
    capacity_ok: bool = True  # False: V3 would fail the booking at verification
    tables: tuple[str, ...] = ()  # the best plan's tables, empty when none
    strategy: str | None = None
    reason: str | None = None  # why there is no plan, or why verification failed
    moves: tuple[Move, ...] = ()  # re-packing moves V3 would have made
    plans_found: int = 0
    evaluated: int = 0
    allocations_seen: int = 0
    max_attempts: int = 5  # the V3 attempt budget in force, for the in-memory walk


@dataclass(frozen=True)
class ShadowRun:
    """V3's outcome after walking the state machine in memory."""

    outcome: str
    tables: tuple[str, ...]
    strategy: str | None
    reason: str | None
    states: tuple[str, ...]  # every state visited, starting at created
    attempts: int


@dataclass(frozen=True)
class ShadowComparison:
    booking_id: str
    restaurant_id: str
    legacy_outcome: str
    legacy_tables: tuple[str, ...]
    v3_outcome: str
    v3_tables: tuple[str, ...]
    v3_strategy: str | None
    agree_outcome: bool
    agree_tables: bool
    why: str | None
    as_of: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return self.agree_outcome and self.agree_tables

    @classmethod
    def from_context(cls, booking_id: str, restaurant_id: str | None,
                     context: dict[str, Any]) -> ShadowComparison:
        """A comparison read back from its event's context (`context()`'s inverse;
        the shadow report reads it)."""
        legacy, v3 = context.get("legacy") or {}, context.get("v3") or {}
        return cls(
            booking_id=booking_id,
            restaurant_id=restaurant_id or "",
            legacy_outcome=str(legacy.get("outcome")),
            legacy_tables=tuple(legacy.get("tables") or ()),
            v3_outcome=str(v3.get("outcome")),
            v3_tables=tuple(v3.get("tables") or ()),
            v3_strategy=v3.get("strategy"),
            agree_outcome=bool(context.get("agree_outcome")),
            agree_tables=bool(context.get("agree_tables")),
            why=context.get("why"),
            as_of=str(context.get("as_of") or ""),
        )

    def context(self) -> dict[str, Any]:
        """The `assignment.shadow.comparison` event's context (the report reads
        it back with `from_context`)."""
        return {
            "legacy": {"outcome": self.legacy_outcome, "tables": list(self.legacy_tables)},
            "v3": {"outcome": self.v3_outcome, "tables": list(self.v3_tables),
                   "strategy": self.v3_strategy},
            "agree_outcome": self.agree_outcome,
            "agree_tables": self.agree_tables,
            "agree": self.agree,
            "why": self.why,
            "as_of": self.as_of,
            **self.details,
        }


@dataclass(frozen=True)
class ShadowError:
    """A shadow that could not finish: recorded as `assignment.shadow.error`."""

    booking_id: str
    restaurant_id: str
    stage: str  # search | compare | record
    error: str
    error_type: str = ""
    legacy_outcome: str = ""


class InvalidShadowInput(ValueError):
    pass


def check_input(inp: ShadowInput) -> None:
    if not inp.booking_id:
        raise InvalidShadowInput("shadow input has no booking_id")
    if inp.legacy_outcome not in OUTCOMES:
        raise InvalidShadowInput(
            f"booking {inp.booking_id}: legacy_outcome must be one of {', '.join(OUTCOMES)}, "
            f"got {inp.legacy_outcome!r}"
        )
    if inp.legacy_outcome == SEATED and not inp.legacy_tables:
        raise InvalidShadowInput(f"booking {inp.booking_id}: seated by legacy but no tables given")


def simulate_assignment(booking_id: str, found: ShadowSearch, max_attempts: int) -> ShadowRun:
    """Walk the assignment state machine as the V3 workflow would, in memory.

    The snapshot is frozen, so every attempt sees the same answer: a plan seats
    the booking on the first attempt, no plan uses every attempt and ends in
    manual review. Each step goes through `check_transition`, so a change to the
    state machine that V3 could not follow fails the shadow loudly.
    """
    states = [S.CREATED]

    def move(target: AssignmentState) -> None:
        check_transition(booking_id, states[-1], target)
        states.append(target)

    if not found.capacity_ok:
        move(S.FAILED)
        return ShadowRun(NOT_SEATED, (), None, found.reason, _values(states), 0)
    move(S.CAPACITY_VERIFIED)
    move(S.ASSIGNMENT_PENDING)
    attempts = 0
    for attempt in range(1, max(1, max_attempts) + 1):
        attempts = attempt
        move(S.ASSIGNMENT_IN_PROGRESS)
        if found.tables:
            move(S.ASSIGNED)
            move(S.CONFIRMED)
            return ShadowRun(SEATED, found.tables, found.strategy, None, _values(states), attempts)
        move(S.ASSIGNMENT_PENDING if attempt < max_attempts else S.MANUAL_REVIEW)
    return ShadowRun(NOT_SEATED, (), None, found.reason, _values(states), attempts)


def compare(inp: ShadowInput, found: ShadowSearch, run: ShadowRun) -> ShadowComparison:
    legacy_tables = tuple(sorted(inp.legacy_tables))
    v3_tables = tuple(sorted(run.tables))
    agree_outcome = inp.legacy_outcome == run.outcome
    agree_tables = agree_outcome and legacy_tables == v3_tables
    return ShadowComparison(
        booking_id=inp.booking_id,
        restaurant_id=inp.restaurant_id or found.restaurant_id,
        legacy_outcome=inp.legacy_outcome,
        legacy_tables=legacy_tables,
        v3_outcome=run.outcome,
        v3_tables=v3_tables,
        v3_strategy=run.strategy,
        agree_outcome=agree_outcome,
        agree_tables=agree_tables,
        why=_why(inp, legacy_tables, run, v3_tables, agree_outcome, agree_tables),
        as_of=found.as_of,
        details={
            "party_size": found.party_size,
            "legacy_reason": inp.legacy_reason,
            "v3_reason": run.reason,
            "v3_states": list(run.states),
            "v3_attempts": run.attempts,
            "v3_moves": [
                {"booking_id": m.booking_id, "from": list(m.from_tables), "to": list(m.to_tables)}
                for m in found.moves
            ],
            "plans_found": found.plans_found,
            "allocations_seen": found.allocations_seen,
        },
    )


def _why(
    inp: ShadowInput,
    legacy_tables: tuple[str, ...],
    run: ShadowRun,
    v3_tables: tuple[str, ...],
    agree_outcome: bool,
    agree_tables: bool,
) -> str | None:
    if agree_outcome and agree_tables:
        return None
    if not agree_outcome and run.outcome == SEATED:
        return (
            f"V3 seats at {'+'.join(v3_tables)} ({run.strategy}); legacy did not seat"
            + (f": {inp.legacy_reason}" if inp.legacy_reason else "")
        )
    if not agree_outcome:
        end = run.states[-1] if run.states else "?"
        return (
            f"legacy seated at {'+'.join(legacy_tables)}; V3 ends in {end}"
            + (f": {run.reason}" if run.reason else "")
        )
    return (
        f"both seat, on different tables: legacy {'+'.join(legacy_tables)}, "
        f"V3 {'+'.join(v3_tables)} ({run.strategy})"
    )


def _values(states: list[AssignmentState]) -> tuple[str, ...]:
    return tuple(s.value for s in states)
