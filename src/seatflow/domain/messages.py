"""Inputs and outputs of the booking workflow and its activities (v1).

One dataclass per input and output, so fields can be added (with defaults)
without breaking running workflows. Plain values only: these cross the
Temporal boundary and are imported by workflow code. Storage never sees
them: the activities translate to and from storage's own types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seatflow.domain.assignment import AttemptOutcome, DecisionAction, Pipeline


@dataclass
class BookingState:
    """Everything the booking workflow knows about its booking, in one value.
    It is carried whole to the next run when the workflow continues as new;
    PostgreSQL stays the truth for the state, version and attempts, which the
    next run reads again."""

    booking_id: str
    restaurant_id: str = ""
    state: str = "created"
    version: int = 0
    attempts: int = 0  # attempts used in total
    round_start: int = 0  # attempts used before the current round (an operator's retry)
    last_reason: str | None = None
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    pipeline: Pipeline = Pipeline.V3
    table_ids: tuple[str, ...] = ()  # every table of the restaurant, to validate an assign
    start: str | None = None  # the booking's start, ISO 8601
    # The manual-review round in progress: the version it began at, and its
    # deadline (ISO 8601), fixed when the round began.
    review_version: int | None = None
    review_deadline: str | None = None
    outcome_recorded: bool = False  # the outcome metric was recorded (once per booking)
    runs: int = 1  # this run's number (continue-as-new counts up)


@dataclass(frozen=True)
class BookingWorkflowInput:
    booking_id: str
    history_limit: int = 0  # continue as new at this many events (0: the default)
    carried: BookingState | None = None  # set when continued as new


@dataclass(frozen=True)
class BookingOutcome:
    booking_id: str
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None
    attempts: int = 0
    pipeline: Pipeline = Pipeline.V3


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
class PipelineDecision:
    """The flags and retry policy in force, read by an activity at the start and
    before every attempt, so a flag change reaches bookings in flight."""

    pipeline: Pipeline
    shadow: bool = False
    max_parallel: int = 3
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 30.0
    manual_review_timeout_seconds: float | None = None  # None: until the booking's start
    legacy_delays_seconds: tuple[float, ...] = (5.0, 15.0, 45.0)
    inputs: dict[str, Any] = field(default_factory=dict)
    shadow_task_queue: str = "seatflow-shadow"
    # The worker's mail transport is local (the file mailbox): under patch
    # "email-local-activity" the guest's messages are sent as local
    # activities, in the workflow task that confirmed (no activity task, no
    # second workflow task). False in histories recorded before it.
    email_local: bool = False


@dataclass(frozen=True)
class BeginResult:
    """What the workflow needs at start: the verified booking and the flags."""

    context: BookingContext
    decision: PipelineDecision


@dataclass(frozen=True)
class DecisionRequest:
    booking_id: str
    restaurant_id: str


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
class AttemptRequest:
    """One automatic assignment attempt, run as ONE local activity: take a
    restaurant slot, move to assignment_in_progress, read the snapshot, plan
    (the engine, or the legacy planner), confirm the best plan still free or
    record the failed attempt, release.

    `on_failure` is the workflow's policy decision, made before the call:
    the state a failed attempt moves to (assignment_pending, or manual_review
    when this is the last attempt of the round)."""

    booking_id: str
    restaurant_id: str
    expected_version: int
    attempt_no: int
    on_failure: str
    pipeline: Pipeline = Pipeline.V3
    max_parallel: int = 3
    slot_wait_seconds: float = 0.5
    waited_ms: float = 0.0  # slot wait already spent in earlier busy tries
    decision_inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptResult:
    outcome: AttemptOutcome
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
    as_of: str = ""  # database time of the floor the attempt planned on


@dataclass(frozen=True)
class AssignRequest:
    """An operator's manual assignment of `table_ids`, checked like any plan;
    `force` overrides the overage, zone and adjacency rules (never capacity,
    fixed tables, or a taken or inactive table), recorded with the actor."""

    booking_id: str
    expected_version: int
    attempt_no: int
    table_ids: tuple[str, ...]
    actor: str
    pipeline: Pipeline = Pipeline.V3
    note: str | None = None
    force: bool = False


@dataclass(frozen=True)
class AssignResult:
    confirmed: bool
    state: str
    version: int
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    reason: str | None = None


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


@dataclass(frozen=True)
class LegacySummaryRequest:
    booking_id: str
    outcome: str  # seated | not_seated
    tries: int
    tables: tuple[str, ...] = ()
    reason: str | None = None
    as_of: str = ""


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
    pipeline: Pipeline = Pipeline.V3


@dataclass(frozen=True)
class ManualReviewDecision:
    action: DecisionAction
    actor: str
    table_ids: tuple[str, ...] = ()
    note: str | None = None
    reason: str | None = None
    force: bool = False  # assign: override overage, zone and adjacency rules


@dataclass(frozen=True)
class ManualReviewResult:
    booking_id: str
    action: DecisionAction
    state: str
    version: int
    tables: tuple[str, ...] = ()
    message: str = ""
