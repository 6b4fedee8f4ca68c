"""What storage is asked to record about an assignment attempt: plain,
frozen values that the activities build from the workflow's messages (the
Temporal payloads stay in `seatflow.domain.messages`; storage never sees them).
"""

from __future__ import annotations

from dataclasses import dataclass

from seatflow.domain.planning import BookingRequest, Move, Plan, RestaurantSnapshot
from seatflow.domain.states import AssignmentState


@dataclass(frozen=True)
class ConfirmSpec:
    """Confirm the first of `plans` still free (after applying `moves`).

    `on_failure` is the state a failed automatic attempt moves to, decided by
    policy before the call (`seatflow.domain.states.after_failed_attempt`).
    With `actor` set it is an operator's manual assignment: checked like any
    plan, `force` overriding the overage, zone and adjacency rules; refused,
    nothing changes."""

    booking_id: str
    expected_version: int
    attempt_no: int
    plans: tuple[Plan, ...]
    moves: tuple[Move, ...] = ()
    pipeline: str = "v3"
    on_failure: AssignmentState = AssignmentState.ASSIGNMENT_PENDING
    actor: str | None = None
    note: str | None = None
    permit_wait_ms: float | None = None
    force: bool = False


@dataclass(frozen=True)
class FailedAttempt:
    """An attempt that found no plan (or lost every plan), and the state the
    policy chose for the booking next."""

    booking_id: str
    expected_version: int
    attempt_no: int
    reason: str
    on_failure: AssignmentState
    pipeline: str = "v3"
    strategy: str | None = None
    plans_tried: tuple[tuple[str, ...], ...] = ()
    permit_wait_ms: float | None = None


@dataclass(frozen=True)
class BookingFloor:
    """A booking as the planner sees it, with its restaurant's floor around its
    time (the booking itself left out), read in one go; `as_of` is the
    database time of the read (ISO 8601)."""

    restaurant_id: str
    request: BookingRequest
    snapshot: RestaurantSnapshot
    as_of: str
