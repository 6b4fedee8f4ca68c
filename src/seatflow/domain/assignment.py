"""The vocabulary of an assignment attempt, shared by the workflow, the
activities, storage and the operator tools: plain enums
(the Temporal payloads are in `seatflow.domain.messages`)."""

from __future__ import annotations

from enum import StrEnum


class Pipeline(StrEnum):
    """Which planner seats a booking: the table-search engine, or the legacy
    first-fit planner kept behind the feature flags for the rollout."""

    V3 = "v3"
    LEGACY = "legacy"


class AttemptOutcome(StrEnum):
    """What one automatic attempt came to."""

    CONFIRMED = "confirmed"  # seated, in the attempt's own transaction
    FAILED = "failed"  # no plan (or every plan taken): recorded, the policy's state applied
    BUSY = "busy"  # no restaurant slot within the bounded wait: nothing written
    CONFLICT = "conflict"  # the booking's version moved: nothing written, reload


class DecisionAction(StrEnum):
    """An operator's decision for a booking in manual review."""

    ASSIGN = "assign"
    RETRY = "retry"
    REJECT = "reject"


# The plan strategy of an operator's assignment: such a booking is never
# moved by re-packing.
MANUAL_STRATEGY = "manual"
