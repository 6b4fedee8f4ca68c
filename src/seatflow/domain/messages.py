"""Inputs and outputs of the booking workflow and its activities.

One dataclass per input and output, so fields can be added (with defaults)
without breaking running workflows. Plain values only: these cross the
Temporal boundary and are imported by workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seatflow.domain.planning import Move, Plan


@dataclass(frozen=True)
class CarriedState:
    """What a booking workflow hands to its next run when it continues as new
    (PostgreSQL holds everything else)."""

    round_start: int = 0  # attempts used before the current round
    review_version: int | None = None  # the manual-review round in progress
    review_deadline: str | None = None  # ISO 8601, fixed when that round began
    outcome_recorded: bool = False
    runs: int = 1  # runs before this one


@dataclass(frozen=True)
class BookingWorkflowInput:
    """Fields may be removed once nothing reads them: the SDK ignores unknown
    keys when it decodes a recorded input (party_size and start went so)."""

    booking_id: str
    restaurant_id: str = ""  # not read; still written by the workflow's continue-as-new
    history_limit: int = 0  # continue as new at this many events (0: the default)
    carried: CarriedState | None = None  # set when continued as new


@dataclass(frozen=True)
class BookingOutcome:
    booking_id: str
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    attempts: int = 0
    pipeline: str = "v3"


@dataclass(frozen=True)
class VerifyRequest:
    booking_id: str


@dataclass(frozen=True)
class BookingContext:
    booking_id: str
    restaurant_id: str
    party_size: int
    state: str
    version: int
    status: str
    start: str
    table_ids: tuple[str, ...] = ()  # every table of the restaurant, for update validation
    reason: str | None = None  # why the booking failed verification, if it did
    attempts_used: int = 0


@dataclass(frozen=True)
class TransitionRequest:
    booking_id: str
    expected_version: int
    to_state: str
    reason: str | None = None
    actor: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionResult:
    ok: bool
    state: str
    version: int
    conflict: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class FindPlansRequest:
    booking_id: str
    attempt_no: int


@dataclass(frozen=True)
class FindPlansResult:
    plans: tuple[Plan, ...]
    moves: tuple[Move, ...] = ()
    reason: str | None = None
    evaluated: int = 0
    search_ms: float = 0.0
    as_of: str = ""  # database time of the snapshot the plans were computed on


@dataclass(frozen=True)
class ConfirmRequest:
    booking_id: str
    expected_version: int
    attempt_no: int
    plans: tuple[Plan, ...]
    moves: tuple[Move, ...] = ()
    pipeline: str = "v3"
    max_attempts: int = 5
    actor: str | None = None  # set for an operator's manual assignment
    note: str | None = None
    permit_wait_ms: float | None = None
    # An operator's explicit override of the overage, zone and adjacency rules
    # (never capacity, fixed tables, or a taken or inactive table).
    force: bool = False


@dataclass(frozen=True)
class ConfirmResult:
    confirmed: bool
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    plans_tried: tuple[tuple[str, ...], ...] = ()
    # Bookings moved by re-packing whose guests already had their confirmation:
    # each has a `table_changed` email queued for `send_confirmation_email`.
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class FailedAttemptRequest:
    booking_id: str
    expected_version: int
    attempt_no: int
    reason: str
    max_attempts: int = 5
    pipeline: str = "v3"
    strategy: str | None = None
    plans_tried: tuple[tuple[str, ...], ...] = ()
    permit_wait_ms: float | None = None


@dataclass(frozen=True)
class EmailRequest:
    booking_id: str
    kind: str = "confirmation"


@dataclass(frozen=True)
class EmailResult:
    sent: bool
    duplicate: bool = False
    path: str | None = None
    failed: bool = False  # given up: permanently undeliverable, or transient errors outlasted
    reason: str | None = None  # why not sent; redacted (never holds the guest's address)


@dataclass(frozen=True)
class EventRequest:
    """An observability event the workflow records about its booking."""

    booking_id: str
    event_type: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelRequest:
    booking_id: str
    expected_version: int
    actor: str | None = None
    reason: str | None = None


@dataclass
class BookingStatus:
    """What the `status` query returns."""

    booking_id: str
    state: str
    version: int
    attempts: int
    last_reason: str | None
    tables: list[str]
    strategy: str | None
    pipeline: str = "v3"


@dataclass(frozen=True)
class DecisionRequest:
    booking_id: str
    restaurant_id: str


@dataclass(frozen=True)
class PipelineDecision:
    """The flags and retry policy in force, read by an activity at the start and
    before every attempt, so a flag change reaches bookings in flight."""

    pipeline: str  # "v3" | "legacy"
    shadow: bool = False
    max_parallel: int = 3
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 30.0
    manual_review_timeout_seconds: float | None = None  # None: until the booking's start
    legacy_delays_seconds: tuple[float, ...] = (5.0, 15.0, 45.0)
    inputs: dict[str, Any] = field(default_factory=dict)
    shadow_task_queue: str = "seatflow-shadow"
    permit_wait_seconds: float = 2.0


@dataclass(frozen=True)
class ManualReviewDecision:
    action: str  # assign | retry | reject
    actor: str
    table_ids: tuple[str, ...] = ()
    note: str | None = None
    reason: str | None = None
    force: bool = False  # assign: override overage, zone and adjacency rules


@dataclass(frozen=True)
class ManualReviewResult:
    booking_id: str
    action: str
    state: str
    version: int
    tables: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class PermitRequest:
    booking_id: str
    restaurant_id: str
    max_parallel: int
    wait_seconds: float = 10.0


@dataclass(frozen=True)
class PermitResult:
    granted: bool
    slot: int | None = None
    wait_ms: float = 0.0


@dataclass(frozen=True)
class LegacySummaryRequest:
    booking_id: str
    outcome: str  # seated | not_seated
    tries: int
    tables: tuple[str, ...] = ()
    reason: str | None = None
    as_of: str = ""


@dataclass(frozen=True)
class BeginResult:
    """What the workflow needs at start: the verified booking and the flags."""

    context: BookingContext
    decision: PipelineDecision


@dataclass(frozen=True)
class AttemptRequest:
    """One automatic assignment attempt, run as ONE local activity: take a
    restaurant slot, move to assignment_in_progress, read the snapshot, search,
    confirm the best plan still free or record the failed attempt, release.

    `on_failure` is the workflow's policy decision, made before the call:
    the state a failed attempt moves to (assignment_pending, or manual_review
    when this is the last attempt of the round)."""

    booking_id: str
    restaurant_id: str
    expected_version: int
    attempt_no: int
    on_failure: str
    max_parallel: int = 3
    slot_wait_seconds: float = 0.5
    waited_ms: float = 0.0  # slot wait already spent in earlier busy tries
    decision_inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptResult:
    """`outcome` is confirmed | failed (a failed attempt, recorded) | busy (no
    slot within the wait: nothing written, no attempt used) | conflict (the
    version moved: nothing written, reload)."""

    outcome: str
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    wait_ms: float = 0.0
    hold_ms: float = 0.0
    search_ms: float = 0.0
    # Re-packed bookings whose guest must get a `table_changed` email.
    notify: tuple[str, ...] = ()
