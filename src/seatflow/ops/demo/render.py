"""What the demo prints: the summary of the evening (a table, or JSON) and
its progress bars."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from seatflow.domain.states import SETTLED
from seatflow.ops.demo.operator import CliStep
from seatflow.ops.demo.scenario import TOLERANCE_MINUTES

MANUAL_REVIEW_QUERY = 'AssignmentState="manual_review"'
DEMO_P95_TARGET_S = 0.5  # created -> confirmed, steady arrivals on a quiet machine
SLOT_WAIT_TARGET_MS = 100.0


@dataclass
class DemoSummary:
    restaurant_id: str
    evening: date
    bookings: int  # bookings made (the booked guests)
    mode: str = "evening"  # evening | overbook
    requested: int = 0  # guests who asked for a table
    at_time_asked: int = 0  # online guests booked at the time they asked for
    offered: int = 0  # online guests offered other times (their own was not available)
    took_offer: int = 0  # ... who booked one of them
    went_away: int = 0  # online guests who booked nothing
    phone: int = 0  # phone / walk-in bookings made without the check
    tolerance_minutes: int = TOLERANCE_MINUTES  # how far from their time guests accept
    states: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, created -> confirmed
    rejected: int = 0  # refused at intake as invalid (none expected)
    seconds: float = 0.0
    ui_url: str | None = None
    namespace: str = "default"
    host_url: str | None = None  # the evening's timeline page (the API's /host/{restaurant})
    slot_wait_p95_ms: float | None = None  # waiting for a restaurant slot (permit_intervals)
    operator: CliStep | None = None  # the party an operator seated
    cancellation: CliStep | None = None  # the guest who cancelled
    operator_queue: list[CliStep] = field(default_factory=list)  # other operator decisions
    notes: list[str] = field(default_factory=list)  # what did not go to plan, for people

    @property
    def unsettled(self) -> int:
        return self.bookings - sum(self.states[s] for s in SETTLED)

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    @property
    def manual_review_url(self) -> str | None:
        if not self.ui_url:
            return None
        return (f"{self.ui_url}/namespaces/{self.namespace}/workflows"
                f"?query={quote(MANUAL_REVIEW_QUERY)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "restaurant_id": self.restaurant_id, "evening": self.evening.isoformat(),
            "requested": self.requested, "at_time_asked": self.at_time_asked,
            "offered": self.offered, "took_offer": self.took_offer,
            "went_away": self.went_away, "phone": self.phone,
            "tolerance_minutes": self.tolerance_minutes,
            "bookings": self.bookings, "confirmed": self.states["confirmed"],
            "manual_review": self.states["manual_review"], "failed": self.states["failed"],
            "cancelled": self.states["cancelled"],
            "unsettled": self.unsettled, "rejected_at_intake": self.rejected,
            "operator_assigned": self.operator.to_dict() if self.operator else None,
            "cancellation": self.cancellation.to_dict() if self.cancellation else None,
            "operator_queue": [step.to_dict() for step in self.operator_queue],
            "notes": list(self.notes),
            "latency_p50_s": self.percentile(50), "latency_p95_s": self.percentile(95),
            "slot_wait_p95_ms": self.slot_wait_p95_ms,
            "seconds": round(self.seconds, 1), "ui_url": self.ui_url,
            "host_url": self.host_url,
            "manual_review_url": self.manual_review_url,
            "targets": self.targets(),
        }

    def targets(self) -> dict[str, dict[str, Any]]:
        """The pipeline's latency targets for a demo evening, met or not."""
        p95, wait = self.percentile(95), self.slot_wait_p95_ms
        return {
            "latency_p95": {"value": p95, "target": f"< {DEMO_P95_TARGET_S} s",
                            "met": p95 is not None and p95 < DEMO_P95_TARGET_S},
            "slot_wait_p95": {"value": wait, "target": f"< {SLOT_WAIT_TARGET_MS} ms",
                              "met": wait is not None and wait < SLOT_WAIT_TARGET_MS},
        }


def print_summary(summary: DemoSummary, console: Console) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    n = summary.bookings or 1
    title = f"{summary.restaurant_id}, evening of {summary.evening:%a %d %b %Y}"
    if summary.mode == "overbook":
        title += " (overbooked: everyone accepted)"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    if summary.mode == "evening":
        table.add_row("requested (guests asking)", str(summary.requested))
        table.add_row("  booked at the time asked", str(summary.at_time_asked))
        table.add_row(f"  offered another time (within {summary.tolerance_minutes} min)",
                      str(summary.offered))
        table.add_row("    took it", str(summary.took_offer))
        table.add_row("  went away (nothing near their time)", str(summary.went_away))
        table.add_row("  phone / walk-in (no check)", str(summary.phone))
    table.add_row("booked", str(summary.bookings))
    table.add_row("confirmed", f"{summary.states['confirmed']} "
                               f"({summary.states['confirmed'] / n:.0%})")
    table.add_row("manual review", str(summary.states["manual_review"]))
    table.add_row("cancelled", str(summary.states["cancelled"]))
    table.add_row("failed", str(summary.states["failed"]))
    if summary.unsettled:
        table.add_row("still in flight", str(summary.unsettled))
    if summary.rejected:
        table.add_row("refused at intake", str(summary.rejected))
    if summary.operator and summary.operator.command:
        op = summary.operator
        table.add_row(f"operator seated the party of {op.party_size}",
                      f"{op.state} at {','.join(op.tables) or '-'}")
    for step in summary.operator_queue:
        table.add_row(f"operator decided a party of {step.party_size}",
                      f"{step.state} at {','.join(step.tables)}" if step.tables
                      else str(step.state))
    table.add_row("latency P50 (created -> confirmed)", seconds(summary.percentile(50)))
    table.add_row("latency P95", seconds(summary.percentile(95)))
    wait = summary.slot_wait_p95_ms
    table.add_row("slot wait P95", "-" if wait is None else f"{wait:.0f} ms")
    for name, t in summary.targets().items():
        table.add_row(f"target {name.replace('_', ' ')} {t['target']}",
                      "met" if t["met"] else "NOT met")
    table.add_row("demo took", f"{summary.seconds:.1f} s")
    console.print()
    console.print(table)
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print()
    if summary.host_url:
        console.print(f"host timeline: {summary.host_url}")
        console.print("               (sign in with the dev-operator token: seatflow dev status "
                      "says where it is)")
    if summary.ui_url:
        console.print(f"Temporal UI:   {summary.ui_url}")
        console.print(f"manual review: filter with  {MANUAL_REVIEW_QUERY}  or open")
        console.print(f"               {summary.manual_review_url}")
    console.print("inspect:       seatflow bookings show ID   |   seatflow review list")
    console.print("the targets:   seatflow report   (confirmation, manual review, latency, "
                  "permit wait)")
    console.print("the stack keeps running; stop it with:  seatflow dev down")


def progress_bars(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=console)
