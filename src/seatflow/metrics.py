"""seatflow's own metrics, emitted through the Temporal SDK's metric meters.

The worker's Runtime (`seatflow.ops.telemetry.make_runtime`) exports them on its
Prometheus endpoint beside the SDK's metrics. Callers pass the meter of where
they run:

- in workflow code, `workflow.metric_meter()`: the SDK drops its recordings
  while a workflow replays, so a worker restart never counts an outcome twice;
- in activity code, `activity.metric_meter()`;
- process-wide gauges (circuit breaker, bookings by state) use the Runtime's
  meter, registered once with `use_process_meter`, because a gauge set under
  per-activity labels would leave stale series behind.

This module imports nothing that does I/O, so workflow code may import it
through `workflow.unsafe.imports_passed_through()`.

The names below are a contract with `deploy/prometheus/alerts.yml`,
`deploy/grafana/seatflow.json` and `docs/runbook.md`; tests check that every
name used there is exported by a running worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from temporalio.common import MetricMeter

from seatflow.domain.states import ACTIVE, AUTOMATIC_OUTCOMES

# -- names ---------------------------------------------------------------

ASSIGNMENT_LATENCY = "seatflow_assignment_latency_seconds"
ASSIGNMENT_OUTCOMES = "seatflow_assignment_outcomes_total"
ASSIGNMENT_ATTEMPTS = "seatflow_assignment_attempts"
PERMIT_WAIT = "seatflow_permit_wait_seconds"
CIRCUIT_BREAKER_STATE = "seatflow_circuit_breaker_state"
CIRCUIT_BREAKER_OPENS = "seatflow_circuit_breaker_opens_total"
EMAILS_SENT = "seatflow_emails_sent_total"
EMAIL_DUPLICATES = "seatflow_email_duplicates_suppressed_total"
EMAIL_FAILURES = "seatflow_email_send_failures_total"
EMAIL_ERRORS = ("transient", "permanent", "gave_up")
SHADOW_COMPARISONS = "seatflow_shadow_comparisons_total"
VERSION_CONFLICTS = "seatflow_version_conflicts_total"
BOOKINGS_IN_STATE = "seatflow_bookings_in_state"

PIPELINES = ("v3", "legacy")
# The automatic pipeline's outcomes, and "noop" for a booking settled before its workflow ran.
OUTCOMES = (*(s.value for s in AUTOMATIC_OUTCOMES), "noop")
# States a booking passes through on its way to an outcome, sampled as a gauge.
# Every non-terminal state, as the bookings-in-state gauge labels them.
ACTIVE_STATES = tuple(s.value for s in ACTIVE)

# Prometheus histogram buckets, chosen around the service's targets
# (docs/runbook.md: P95 latency < 3 s, alert at 5 s; permit wait P95 < 100 ms).
HISTOGRAM_BUCKETS: Mapping[str, Sequence[float]] = {
    ASSIGNMENT_LATENCY: (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
                         60.0, 300.0, 3600.0),
    PERMIT_WAIT: (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    ASSIGNMENT_ATTEMPTS: (0, 1, 2, 3, 4, 5, 6, 8, 10, 20),
}

_DESCRIPTIONS = {
    ASSIGNMENT_LATENCY: "Booking created -> confirmed by the pipeline, seconds",
    ASSIGNMENT_OUTCOMES: "Bookings settled by the automatic pipeline, by pipeline and outcome",
    ASSIGNMENT_ATTEMPTS: "Assignment attempts a booking used before its outcome",
    PERMIT_WAIT: "Time waited for a per-restaurant permit before searching, seconds",
    CIRCUIT_BREAKER_STATE: "Circuit breaker state in this worker: 0 closed, 1 half-open, 2 open",
    CIRCUIT_BREAKER_OPENS: "Times the circuit breaker opened",
    EMAILS_SENT: "Confirmation emails handed to the mail transport",
    EMAIL_DUPLICATES: "Email sends skipped because the message was already sent",
    EMAIL_FAILURES: "Email deliveries that failed, by error: transient (retried), permanent "
                    "(undeliverable, recorded as email.failed) or gave_up (transient errors "
                    "outlasted SEATFLOW_MAIL_MAX_ATTEMPTS, recorded as email.failed)",
    SHADOW_COMPARISONS: "Shadow comparisons of legacy and V3, by agreement",
    VERSION_CONFLICTS: "State transitions that lost an optimistic version check",
    BOOKINGS_IN_STATE: "Bookings currently in each non-terminal assignment state",
}

_process_meter: MetricMeter | None = None


def use_process_meter(meter: MetricMeter | None) -> None:
    """Register the Runtime's meter for process-wide gauges (None: forget it)."""
    global _process_meter
    _process_meter = meter


def process_meter() -> MetricMeter | None:
    return _process_meter


# -- recording -----------------------------------------------------------


def record_outcome(meter: MetricMeter, pipeline: str, outcome: str) -> None:
    """A booking reached an outcome: confirmed, manual_review, failed or noop
    (the workflow found it already settled)."""
    meter.create_counter(ASSIGNMENT_OUTCOMES, _DESCRIPTIONS[ASSIGNMENT_OUTCOMES]).add(
        1, {"pipeline": pipeline, "outcome": outcome}
    )


def record_latency(meter: MetricMeter, pipeline: str, seconds: float) -> None:
    """Created -> confirmed for a booking the pipeline confirmed (not an
    operator's manual assignment, whose latency is a person's)."""
    meter.create_histogram_float(
        ASSIGNMENT_LATENCY, _DESCRIPTIONS[ASSIGNMENT_LATENCY], "s"
    ).record(max(0.0, seconds), {"pipeline": pipeline})


def record_attempts(meter: MetricMeter, pipeline: str, outcome: str, attempts: int) -> None:
    meter.create_histogram(ASSIGNMENT_ATTEMPTS, _DESCRIPTIONS[ASSIGNMENT_ATTEMPTS]).record(
        max(0, attempts), {"pipeline": pipeline, "outcome": outcome}
    )


def record_settled(
    meter: MetricMeter,
    pipeline: str,
    outcome: str,
    attempts: int,
    latency_seconds: float | None = None,
) -> None:
    """Outcome, attempts and (when confirmed by the pipeline) latency in one call:
    what the workflow records once when a booking settles."""
    record_outcome(meter, pipeline, outcome)
    record_attempts(meter, pipeline, outcome, attempts)
    if outcome == "confirmed" and latency_seconds is not None:
        record_latency(meter, pipeline, latency_seconds)


def record_permit_wait(meter: MetricMeter, seconds: float) -> None:
    meter.create_histogram_float(PERMIT_WAIT, _DESCRIPTIONS[PERMIT_WAIT], "s").record(
        max(0.0, seconds)
    )


def record_email(meter: MetricMeter, *, sent: bool, duplicate: bool, kind: str = "confirmation") -> None:
    """The result of one send attempt from the outbox."""
    if sent:
        meter.create_counter(EMAILS_SENT, _DESCRIPTIONS[EMAILS_SENT]).add(1, {"kind": kind})
    if duplicate:
        meter.create_counter(EMAIL_DUPLICATES, _DESCRIPTIONS[EMAIL_DUPLICATES]).add(
            1, {"kind": kind}
        )


def record_email_failure(meter: MetricMeter, *, error: str, kind: str = "confirmation") -> None:
    """One failed delivery: `error` is transient, permanent or gave_up."""
    meter.create_counter(EMAIL_FAILURES, _DESCRIPTIONS[EMAIL_FAILURES]).add(
        1, {"kind": kind, "error": error}
    )


def record_shadow_comparison(meter: MetricMeter, agree: bool) -> None:
    meter.create_counter(SHADOW_COMPARISONS, _DESCRIPTIONS[SHADOW_COMPARISONS]).add(
        1, {"agree": "true" if agree else "false"}
    )


def record_version_conflict(meter: MetricMeter) -> None:
    meter.create_counter(VERSION_CONFLICTS, _DESCRIPTIONS[VERSION_CONFLICTS]).add(1)


BREAKER_STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


def set_circuit_breaker_state(breaker: str, state: str, meter: MetricMeter | None = None) -> None:
    """The breaker is now `state` (closed, half_open, open) in this process.

    Uses the process meter unless one is given; a no-op when neither exists
    (a unit test without a Runtime). Safe to call often: it sets a gauge.
    """
    meter = meter or _process_meter
    if meter is None:
        return
    meter.create_gauge_float(CIRCUIT_BREAKER_STATE, _DESCRIPTIONS[CIRCUIT_BREAKER_STATE]).set(
        BREAKER_STATE_VALUES.get(state, 2.0), {"breaker": breaker}
    )


def record_circuit_breaker_opened(breaker: str, meter: MetricMeter | None = None) -> None:
    """The breaker opened from closed (a re-open after a failed probe is not a new open)."""
    meter = meter or _process_meter
    if meter is None:
        return
    meter.create_counter(CIRCUIT_BREAKER_OPENS, _DESCRIPTIONS[CIRCUIT_BREAKER_OPENS]).add(
        1, {"breaker": breaker}
    )
    set_circuit_breaker_state(breaker, "open", meter)


def set_bookings_in_state(meter: MetricMeter, counts: Mapping[str, int]) -> None:
    """Gauge of bookings per non-terminal state (every state, zeros included)."""
    gauge = meter.create_gauge(BOOKINGS_IN_STATE, _DESCRIPTIONS[BOOKINGS_IN_STATE])
    for state in ACTIVE_STATES:
        gauge.set(int(counts.get(state, 0)), {"state": state})


def prime(meter: MetricMeter, breakers: Iterable[str] = ("database", "mail")) -> None:
    """Export every counter and gauge at zero from worker start.

    Prometheus only sees a series once it was recorded; `rate()` over a
    counter that appears with its first increment misses that increment, and
    an alert over a missing series can never fire. Histograms cannot be
    primed without a fake observation: they appear with their first sample.
    """
    outcomes = meter.create_counter(ASSIGNMENT_OUTCOMES, _DESCRIPTIONS[ASSIGNMENT_OUTCOMES])
    for pipeline in PIPELINES:
        for outcome in OUTCOMES:
            outcomes.add(0, {"pipeline": pipeline, "outcome": outcome})
    meter.create_counter(EMAILS_SENT, _DESCRIPTIONS[EMAILS_SENT]).add(0, {"kind": "confirmation"})
    meter.create_counter(EMAIL_DUPLICATES, _DESCRIPTIONS[EMAIL_DUPLICATES]).add(
        0, {"kind": "confirmation"}
    )
    failures = meter.create_counter(EMAIL_FAILURES, _DESCRIPTIONS[EMAIL_FAILURES])
    for error in EMAIL_ERRORS:
        failures.add(0, {"kind": "confirmation", "error": error})
    shadow = meter.create_counter(SHADOW_COMPARISONS, _DESCRIPTIONS[SHADOW_COMPARISONS])
    for agree in ("true", "false"):
        shadow.add(0, {"agree": agree})
    meter.create_counter(VERSION_CONFLICTS, _DESCRIPTIONS[VERSION_CONFLICTS]).add(0)
    gauge = meter.create_gauge_float(CIRCUIT_BREAKER_STATE, _DESCRIPTIONS[CIRCUIT_BREAKER_STATE])
    opens = meter.create_counter(CIRCUIT_BREAKER_OPENS, _DESCRIPTIONS[CIRCUIT_BREAKER_OPENS])
    for breaker in breakers:
        gauge.set(0.0, {"breaker": breaker})
        opens.add(0, {"breaker": breaker})
    set_bookings_in_state(meter, {})


__all__ = [
    "ACTIVE_STATES", "ASSIGNMENT_ATTEMPTS", "ASSIGNMENT_LATENCY", "ASSIGNMENT_OUTCOMES",
    "BOOKINGS_IN_STATE", "BREAKER_STATE_VALUES", "CIRCUIT_BREAKER_OPENS", "CIRCUIT_BREAKER_STATE", "EMAILS_SENT",
    "EMAIL_DUPLICATES", "EMAIL_ERRORS", "EMAIL_FAILURES", "HISTOGRAM_BUCKETS", "OUTCOMES", "PERMIT_WAIT", "PIPELINES",
    "SHADOW_COMPARISONS", "VERSION_CONFLICTS", "prime", "process_meter", "record_attempts",
    "record_circuit_breaker_opened", "record_email", "record_email_failure", "record_latency", "record_outcome", "record_permit_wait",
    "record_settled", "record_shadow_comparison", "record_version_conflict",
    "set_bookings_in_state", "set_circuit_breaker_state", "use_process_meter",
]
