"""The operations dashboard, computed from PostgreSQL (docs/runbook.md explains each figure).

Scope: the bookings created in [since, until), optionally of one restaurant;
everything booking-related (attempts, transitions, emails, permits, shadow
comparisons) is taken for those bookings. Circuit-breaker events are taken by
time, and with a restaurant filter also the process-wide ones (restaurant_id
NULL), because an open breaker stops every restaurant.

Definitions (docs/runbook.md explains each to operators):
- decided: bookings whose automatic pipeline reached an outcome: state
  confirmed, manual_review or failed, or confirmed once and cancelled later;
  in-flight bookings and bookings cancelled before confirmation are left out.
- confirmation rate: decided bookings confirmed (ever) / decided.
- manual review rate: decided bookings that ever entered manual_review / decided.
- error rate: decided bookings that failed without passing manual review (the
  pipeline itself gave up: invalid at verification or an error) / decided.
- V3 success rate: bookings with a V3 attempt that V3 confirmed automatically
  / bookings with a V3 attempt that are decided.
- latency: created_at -> confirmed_at of bookings the pipeline confirmed
  (operator assignments excluded: their latency is a person's).
- transition error rate: version-conflict events / state-transition events.
- duplicate emails: messages delivered beyond the first per booking
  (send_attempts > 1); suppressed duplicates are reported beside them.

The alert rules mirror deploy/prometheus/alerts.yml over the report's range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.figures import BREAKER_OPENED, BreakerEvent
from seatflow.domain.localtime import local_time
from seatflow.storage.floorplans import list_restaurants
from seatflow.storage.report import load_report_counts

# The service's targets; docs/runbook.md says what to do when one is missed.
TARGETS = {
    "confirmation_rate": ">= 95%",
    "manual_review_rate": "< 10%",
    "latency_p95_seconds": "< 3 s",
    "permit_wait_p95_ms": "< 100 ms",
    "duplicate_emails": "0",
}



@dataclass(frozen=True)
class AlertRule:
    """One alert rule, as deploy/prometheus/alerts.yml names it (docs/runbook.md)."""

    name: str
    severity: str
    description: str
    threshold: float


ALERT_RULES = (
    AlertRule("SeatflowAssignmentErrorRateHigh", "P1",
              "error rate > 5% (Prometheus: over 10 min)", 0.05),
    AlertRule("SeatflowCircuitBreakerOpen", "P2",
              "circuit breaker open > 5 min", 300.0),
    AlertRule("SeatflowManualReviewRateHigh", "P2",
              "manual review > 20% of bookings", 0.20),
    AlertRule("SeatflowAssignmentLatencyP95High", "P3",
              "P95 assignment latency > 5 s (Prometheus: over 15 min)", 5.0),
)


@dataclass
class AlertStatus:
    name: str
    severity: str
    description: str
    status: str  # ok | FIRING | no_data
    value: float | None


@dataclass
class OperationsReport:
    since: datetime
    until: datetime
    restaurant_id: str | None
    timezone: str | None = None  # the restaurant's, for the people reading the range
    bookings: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    decided: int = 0
    confirmed: int = 0
    manual_review_entered: int = 0
    pipeline_failed: int = 0
    confirmation_rate: float | None = None
    manual_review_rate: float | None = None
    error_rate: float | None = None
    v3_bookings: int = 0
    v3_confirmed: int = 0
    v3_success_rate: float | None = None
    latency_seconds: dict[str, float | None] = field(default_factory=dict)
    permit_wait_p95_ms: float | None = None
    transitions: int = 0
    version_conflicts: int = 0
    transition_error_rate: float | None = None
    emails_sent: int = 0
    duplicate_emails: int = 0
    duplicates_suppressed: int = 0
    duplicate_rate: float | None = None
    breaker_opens: int = 0
    breaker_longest_open_seconds: float | None = None
    breaker_open_now: bool = False
    shadow_comparisons: int = 0
    shadow_agreements: int = 0
    shadow_agreement_rate: float | None = None
    alerts: list[AlertStatus] = field(default_factory=list)

    @property
    def p1_firing(self) -> bool:
        return any(a.severity == "P1" and a.status == "FIRING" for a in self.alerts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["until"] = self.until.isoformat()
        data["targets"] = dict(TARGETS)
        data["p1_firing"] = self.p1_firing
        return data


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: Any, digits: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def _fold_breaker(report: OperationsReport, events: tuple[BreakerEvent, ...], now: datetime) -> None:
    longest: float | None = None
    open_since: dict[str, datetime] = {}
    for event in events:
        event_type, context, at = event.event_type, event.context, event.at
        key = str(context.get("breaker") or context.get("name") or "breaker")
        if event_type == BREAKER_OPENED:
            report.breaker_opens += 1
            open_since.setdefault(key, at)
            continue
        opened = open_since.pop(key, None)
        seconds = context.get("open_seconds")
        if seconds is None and opened is not None:
            seconds = (at - opened).total_seconds()
        if seconds is not None:
            longest = max(longest or 0.0, float(seconds))
    end = min(report.until, now)
    for opened in open_since.values():  # still open at the end of the range
        report.breaker_open_now = True
        longest = max(longest or 0.0, (end - opened).total_seconds())
    report.breaker_longest_open_seconds = _round(longest, 3)


def evaluate_alerts(report: OperationsReport) -> list[AlertStatus]:
    values: dict[str, float | None] = {
        "SeatflowAssignmentErrorRateHigh": report.error_rate,
        "SeatflowCircuitBreakerOpen": report.breaker_longest_open_seconds
        if report.breaker_longest_open_seconds is not None else 0.0,
        "SeatflowManualReviewRateHigh": report.manual_review_rate,
        "SeatflowAssignmentLatencyP95High": report.latency_seconds.get("p95"),
    }
    statuses = []
    for rule in ALERT_RULES:
        value = values[rule.name]
        if value is None:
            status = "no_data"
        else:
            status = "FIRING" if value > rule.threshold else "ok"
        statuses.append(AlertStatus(rule.name, rule.severity, rule.description, status,
                                    _round(value)))
    return statuses


async def build_report(
    engine: AsyncEngine,
    *,
    since: datetime,
    until: datetime,
    restaurant_id: str | None = None,
    now: datetime | None = None,
) -> OperationsReport:
    now = now or datetime.now(UTC)
    counts = await load_report_counts(engine, since=since, until=until,
                                      restaurant_id=restaurant_id)
    timezone = None
    if restaurant_id is not None:
        timezone = next((r.timezone for r in await list_restaurants(engine)
                         if r.id == restaurant_id), None)
    report = OperationsReport(
        since=since, until=until, restaurant_id=restaurant_id, timezone=timezone,
        bookings=sum(counts.by_state.values()), by_state=dict(counts.by_state),
        in_flight=counts.in_flight, decided=counts.decided, confirmed=counts.confirmed,
        manual_review_entered=counts.reviewed, pipeline_failed=counts.failed,
        confirmation_rate=_ratio(counts.confirmed, counts.decided),
        manual_review_rate=_ratio(counts.reviewed, counts.decided),
        error_rate=_ratio(counts.failed, counts.decided),
        v3_bookings=counts.v3_decided, v3_confirmed=counts.v3_confirmed,
        v3_success_rate=_ratio(counts.v3_confirmed, counts.v3_decided),
        latency_seconds={**counts.latency_seconds, "count": counts.latency_count},
        permit_wait_p95_ms=counts.permit_wait_p95_ms,
        transitions=counts.transitions, version_conflicts=counts.version_conflicts,
        transition_error_rate=_ratio(counts.version_conflicts, counts.transitions),
        emails_sent=counts.emails_sent, duplicate_emails=counts.duplicate_emails,
        duplicates_suppressed=counts.duplicates_suppressed,
        duplicate_rate=_ratio(counts.duplicate_emails, counts.emails_sent),
        shadow_comparisons=counts.shadow_comparisons,
        shadow_agreements=counts.shadow_agreements,
        shadow_agreement_rate=_ratio(counts.shadow_agreements, counts.shadow_comparisons),
    )
    _fold_breaker(report, counts.breaker_events, now)
    report.alerts = evaluate_alerts(report)
    return report


# -- rendering -----------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _meets(value: float | None, ok: bool) -> str:
    if value is None:
        return "[dim]no data[/]"
    return "[green]met[/]" if ok else "[red]missed[/]"


def render(report: OperationsReport) -> Any:
    """A rich renderable: figures with their targets, then the alert rules."""
    from rich.console import Group
    from rich.table import Table

    scope = report.restaurant_id or "all restaurants"
    figures = Table(
        # One restaurant's report reads on its clock; several, in UTC.
        title=f"seatflow report: {scope}, {local_time(report.since, report.timezone, named=False)}"
              f" -> {local_time(report.until, report.timezone)}",
        title_justify="left",
    )
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    figures.add_column("target", justify="right")
    figures.add_column("")
    states = ", ".join(f"{s} {n}" for s, n in report.by_state.items()) or "none"
    figures.add_row("bookings", str(report.bookings), "", "")
    figures.add_row("  by state", states, "", "")
    cr, mr = report.confirmation_rate, report.manual_review_rate
    lat = report.latency_seconds
    figures.add_row("confirmation rate", _pct(cr), TARGETS["confirmation_rate"],
                    _meets(cr, cr is not None and cr >= 0.95))
    figures.add_row("V3 success rate", _pct(report.v3_success_rate),
                    "", f"{report.v3_confirmed}/{report.v3_bookings}")
    figures.add_row("manual review rate", _pct(mr), TARGETS["manual_review_rate"],
                    _meets(mr, mr is not None and mr < 0.10))
    figures.add_row("error rate (pipeline failed)", _pct(report.error_rate), "", "")
    figures.add_row("latency P50", _secs(lat.get("p50")), "", "")
    figures.add_row("latency P95", _secs(lat.get("p95")), TARGETS["latency_p95_seconds"],
                    _meets(lat.get("p95"), (lat.get("p95") or 0) < 3.0))
    figures.add_row("latency P99", _secs(lat.get("p99")), "", "")
    pw = report.permit_wait_p95_ms
    figures.add_row("permit wait P95", "-" if pw is None else f"{pw:.1f} ms",
                    TARGETS["permit_wait_p95_ms"], _meets(pw, (pw or 0) < 100))
    figures.add_row("transition error rate", _pct(report.transition_error_rate), "",
                    f"{report.version_conflicts}/{report.transitions}")
    figures.add_row("emails sent", str(report.emails_sent), "", "")
    figures.add_row("duplicate emails", f"{report.duplicate_emails} "
                    f"({_pct(report.duplicate_rate)})", TARGETS["duplicate_emails"],
                    _meets(0.0 if report.emails_sent else None, report.duplicate_emails == 0))
    figures.add_row("  duplicate sends suppressed", str(report.duplicates_suppressed), "", "")
    longest = report.breaker_longest_open_seconds
    figures.add_row("circuit-breaker opens", str(report.breaker_opens), "",
                    "open now" if report.breaker_open_now else "")
    figures.add_row("  longest open", "-" if longest is None else f"{longest:.1f} s", "", "")
    figures.add_row("shadow agreement", _pct(report.shadow_agreement_rate), "",
                    f"{report.shadow_agreements}/{report.shadow_comparisons}")
    alerts = Table(title="alert rules", title_justify="left")
    alerts.add_column("rule")
    alerts.add_column("severity")
    alerts.add_column("condition")
    alerts.add_column("value", justify="right")
    alerts.add_column("status")
    for a in report.alerts:
        style = {"FIRING": "bold red", "ok": "green"}.get(a.status, "dim")
        alerts.add_row(a.name, a.severity, a.description,
                       "-" if a.value is None else f"{a.value:g}", f"[{style}]{a.status}[/]")
    return Group(figures, alerts)


__all__ = [
    "ALERT_RULES",
    "TARGETS",
    "AlertRule",
    "AlertStatus",
    "OperationsReport",
    "build_report",
    "evaluate_alerts",
    "render",
]
