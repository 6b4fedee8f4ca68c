"""The assignment state machine, as data and pure checks."""

from __future__ import annotations

from enum import StrEnum


class AssignmentState(StrEnum):
    CREATED = "created"
    CAPACITY_VERIFIED = "capacity_verified"
    ASSIGNMENT_PENDING = "assignment_pending"
    ASSIGNMENT_IN_PROGRESS = "assignment_in_progress"
    ASSIGNED = "assigned"
    CONFIRMED = "confirmed"
    MANUAL_REVIEW = "manual_review"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = AssignmentState

ALLOWED_TRANSITIONS: dict[AssignmentState, frozenset[AssignmentState]] = {
    S.CREATED: frozenset({S.CAPACITY_VERIFIED, S.FAILED, S.CANCELLED}),
    S.CAPACITY_VERIFIED: frozenset({S.ASSIGNMENT_PENDING, S.FAILED, S.CANCELLED}),
    # -> manual_review: the start passed before any attempt ran (see verify_booking)
    S.ASSIGNMENT_PENDING: frozenset(
        {S.ASSIGNMENT_IN_PROGRESS, S.MANUAL_REVIEW, S.FAILED, S.CANCELLED}
    ),
    S.ASSIGNMENT_IN_PROGRESS: frozenset(
        {S.ASSIGNED, S.ASSIGNMENT_PENDING, S.MANUAL_REVIEW, S.CANCELLED}
    ),
    S.ASSIGNED: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.CANCELLED}),
    S.MANUAL_REVIEW: frozenset({S.ASSIGNMENT_PENDING, S.ASSIGNED, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

# The named sets of states (docs/architecture.md, the state machine). Each is
# defined here once; code elsewhere uses these names, never its own list.

# The workflow is trying to seat the booking.
ASSIGNING = frozenset({S.ASSIGNMENT_PENDING, S.ASSIGNMENT_IN_PROGRESS})
# Waiting for an operator's decision (review assign / retry / reject).
AWAITING_OPERATOR = frozenset({S.MANUAL_REVIEW})
# The workflow has nothing left to do (a confirmed booking can still be cancelled).
TERMINAL = frozenset({S.CONFIRMED, S.FAILED, S.CANCELLED})
# No automatic step is pending: `bookings wait` returns, `settled_at` is stamped.
SETTLED = TERMINAL | AWAITING_OPERATOR
# Where the automatic pipeline leaves a booking: settled, but not cancelled (a
# cancel is the guest's or an operator's act). The outcome metric's labels, in
# this order.
AUTOMATIC_OUTCOMES = (S.CONFIRMED, S.MANUAL_REVIEW, S.FAILED)
# No transition leaves these: such a booking can be neither cancelled nor resolved.
FINAL = frozenset(s for s, allowed in ALLOWED_TRANSITIONS.items() if not allowed)
# Every state but the terminal ones, in the enum's order (the bookings-in-state gauge).
ACTIVE = tuple(s for s in AssignmentState if s not in TERMINAL)
# Bookings that want a table and hold none yet: the planner's "known
# bookings" (re-packing leaves room for them; the shadow counts them).
UNSEATED = frozenset({S.CREATED, S.CAPACITY_VERIFIED, S.ASSIGNMENT_PENDING,
                      S.ASSIGNMENT_IN_PROGRESS, S.MANUAL_REVIEW})
# A booking in these states may change tables without changing state (an
# operator's move, or re-packing for another booking): a versioned
# `tables_changed` write with history, event and outbox rows, like a transition.
TABLE_CHANGE_STATES = frozenset({S.CONFIRMED})


class IllegalTransition(ValueError):
    def __init__(self, booking_id: str, current: AssignmentState, target: AssignmentState):
        super().__init__(
            f"booking {booking_id}: cannot move from {current.value} to {target.value}"
        )
        self.booking_id = booking_id
        self.current = current
        self.target = target


def can_transition(current: AssignmentState, target: AssignmentState) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def check_transition(booking_id: str, current: AssignmentState, target: AssignmentState) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(booking_id, current, target)


def backoff_seconds(failed_attempts: int, base: float, cap: float, jitter: float) -> float:
    """Delay after the n-th failed attempt: base * 2^(n-1), capped, minus up to 20% jitter.

    `jitter` is a number in [0, 1) supplied by the caller (the workflow's
    deterministic random), so this stays a pure function.
    """
    if failed_attempts < 1:
        return 0.0
    raw = min(cap, base * float(2 ** (failed_attempts - 1)))
    # Jitter only shortens the delay, so the cap is a true upper bound and
    # consecutive delays still grow until the cap (0.8 * 2x > 1x).
    return max(0.0, raw * (0.8 + 0.2 * jitter))


def after_failed_attempt(attempt_no: int, last_attempt_of_round: int) -> AssignmentState:
    """The workflow's policy for a failed attempt, decided before the attempt
    runs: wait and retry, or hand the booking to an operator when this was the
    last attempt of the round (five by default; an operator's retry starts a
    new round)."""
    if attempt_no >= last_attempt_of_round:
        return AssignmentState.MANUAL_REVIEW
    return AssignmentState.ASSIGNMENT_PENDING


def slot_retry_seconds(jitter: float, base: float = 0.25) -> float:
    """Durable wait before trying again when every slot of the restaurant
    stayed busy for the attempt's bounded wait: base to 2x base, jittered (a
    number in [0, 1) from the workflow's deterministic random) so that
    waiting bookings do not come back in lockstep."""
    return base * (1.0 + jitter)
