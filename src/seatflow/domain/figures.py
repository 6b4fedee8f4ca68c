"""Figures read back from the database for the operations report and the load
test: plain counts and measurements, no judgement (the report applies the
targets and the alert rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Event types the report counts (written by storage transitions and the breaker).
BREAKER_OPENED = "circuit_breaker.opened"
BREAKER_CLOSED = "circuit_breaker.closed"
VERSION_CONFLICT = "booking.assignment_version_conflict"
STATE_TRANSITION = "booking.assignment_state_transition"
SHADOW_COMPARISON = "assignment.shadow.comparison"


@dataclass(frozen=True)
class BreakerEvent:
    event_type: str  # BREAKER_OPENED | BREAKER_CLOSED
    context: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class ReportCounts:
    """Counts over the bookings created in a range (see seatflow.ops.report for the
    definitions of decided, reviewed and failed)."""

    by_state: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    decided: int = 0
    confirmed: int = 0
    reviewed: int = 0
    failed: int = 0
    v3_decided: int = 0
    v3_confirmed: int = 0
    latency_seconds: dict[str, float | None] = field(default_factory=dict)  # p50 p95 p99 max
    latency_count: int = 0
    permit_wait_p95_ms: float | None = None
    transitions: int = 0
    version_conflicts: int = 0
    shadow_comparisons: int = 0
    shadow_agreements: int = 0
    emails_sent: int = 0
    duplicate_emails: int = 0
    duplicates_suppressed: int = 0
    breaker_events: tuple[BreakerEvent, ...] = ()


@dataclass(frozen=True)
class EmailOutboxFigures:
    """The email outbox of a set of bookings."""

    duplicates_suppressed: int  # sends the outbox lock turned away
    extra_sends: int  # sends beyond the first per message
    confirmed_ids: frozenset[str]  # bookings confirmed (ever): each owes one email
