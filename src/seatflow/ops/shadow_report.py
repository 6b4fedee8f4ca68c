"""`seatflow shadow-report`: legacy vs V3 from the shadow's comparison events.

Reads `assignment.shadow.comparison` and `assignment.shadow.error` events
(docs/deploy.md, the rollout) and judges them against the rollout gate: the shadow's
success rate no more than 5 points below legacy's, and zero shadow errors.
The gate is one-sided on purpose: a shadow that seats more guests than the
legacy planner (re-packing does) is the point of the rollout, not a reason to
stop it; where the two disagree is listed below the gate for a person to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.shadow import COMPARISON_EVENT, ERROR_EVENT, SEATED, ShadowComparison
from seatflow.storage.shadow import load_events

GATE_MAX_GAP_POINTS = 5.0
GATE_MAX_ERRORS = 0
EXAMPLES = 5


@dataclass(frozen=True)
class ErrorEvent:
    booking_id: str | None
    restaurant_id: str | None
    stage: str
    error: str
    at: datetime | None = None


@dataclass(frozen=True)
class ShadowReport:
    comparisons: tuple[ShadowComparison, ...]
    errors: tuple[ErrorEvent, ...] = ()
    duplicate_comparisons: int = 0  # comparison events beyond one per booking (should be 0)
    since: datetime | None = None
    restaurant: str | None = None
    max_gap_points: float = GATE_MAX_GAP_POINTS
    max_errors: int = GATE_MAX_ERRORS

    # ----------------------------------------------------------- figures

    @property
    def compared(self) -> int:
        return len(self.comparisons)

    @property
    def legacy_seated(self) -> int:
        return sum(1 for c in self.comparisons if c.legacy_outcome == SEATED)

    @property
    def v3_seated(self) -> int:
        return sum(1 for c in self.comparisons if c.v3_outcome == SEATED)

    @property
    def both_seated(self) -> list[ShadowComparison]:
        return [c for c in self.comparisons
                if c.legacy_outcome == SEATED and c.v3_outcome == SEATED]

    @property
    def v3_only(self) -> list[ShadowComparison]:
        return [c for c in self.comparisons
                if c.v3_outcome == SEATED and c.legacy_outcome != SEATED]

    @property
    def legacy_only(self) -> list[ShadowComparison]:
        return [c for c in self.comparisons
                if c.legacy_outcome == SEATED and c.v3_outcome != SEATED]

    @property
    def table_mismatches(self) -> list[ShadowComparison]:
        return [c for c in self.both_seated if not c.agree_tables]

    @property
    def error_bookings(self) -> int:
        return len({e.booking_id for e in self.errors})

    def gap_points(self) -> float | None:
        legacy, v3 = _rate(self.legacy_seated, self.compared), _rate(self.v3_seated, self.compared)
        return None if legacy is None or v3 is None else round(v3 - legacy, 1)

    def verdict(self) -> tuple[str, list[str]]:
        """("pass" | "fail" | "no_data", the reasons a person can act on)."""
        reasons: list[str] = []
        gap = self.gap_points()
        if gap is None:
            reasons.append("no shadow comparisons in range: run shadow mode first")
        elif gap < -self.max_gap_points:
            reasons.append(
                f"V3 success rate is {abs(gap):.1f} points below legacy "
                f"(gate: at most {self.max_gap_points:g} below)"
            )
        if len(self.errors) > self.max_errors:
            reasons.append(
                f"{len(self.errors)} shadow error(s) on {self.error_bookings} booking(s) "
                f"(gate: {self.max_errors})"
            )
        if self.duplicate_comparisons:
            reasons.append(
                f"{self.duplicate_comparisons} duplicate comparison event(s): "
                "the one-per-booking guarantee broke"
            )
        if gap is None:
            return "no_data", reasons
        return ("fail" if reasons else "pass"), reasons

    # ----------------------------------------------------------- output

    def to_dict(self) -> dict[str, Any]:
        both = self.both_seated
        agree_outcome = sum(1 for c in self.comparisons if c.agree_outcome)
        agree_tables = sum(1 for c in both if c.agree_tables)
        verdict, reasons = self.verdict()
        return {
            "since": self.since.isoformat() if self.since else None,
            "restaurant": self.restaurant,
            "compared": self.compared,
            "outcome_agreement": {
                "agree": agree_outcome,
                "rate": _rate(agree_outcome, self.compared),
                "both_seated": len(both),
                "both_not_seated": sum(
                    1 for c in self.comparisons
                    if c.legacy_outcome != SEATED and c.v3_outcome != SEATED
                ),
            },
            "table_agreement": {
                "agree": agree_tables,
                "of_both_seated": len(both),
                "rate": _rate(agree_tables, len(both)),
            },
            "full_agreement": {
                "agree": sum(1 for c in self.comparisons if c.agree),
                "rate": _rate(sum(1 for c in self.comparisons if c.agree), self.compared),
            },
            "legacy": {"seated": self.legacy_seated,
                       "success_rate": _rate(self.legacy_seated, self.compared)},
            "v3": {"seated": self.v3_seated,
                   "success_rate": _rate(self.v3_seated, self.compared)},
            "v3_only_successes": _examples(self.v3_only),
            "legacy_only_successes": _examples(self.legacy_only),
            "table_mismatches": _examples(self.table_mismatches),
            "shadow_errors": {
                "count": len(self.errors),
                "bookings": self.error_bookings,
                "examples": [
                    {"booking_id": e.booking_id, "restaurant_id": e.restaurant_id,
                     "stage": e.stage, "error": e.error}
                    for e in self.errors[:EXAMPLES]
                ],
            },
            "duplicate_comparisons": self.duplicate_comparisons,
            "gate": {
                "max_gap_points": self.max_gap_points,
                "max_errors": self.max_errors,
                "gap_points": self.gap_points(),
                "verdict": verdict,
                "passed": verdict == "pass",
                "reasons": reasons,
            },
        }

    def render(self) -> str:
        data = self.to_dict()
        scope = []
        if self.restaurant:
            scope.append(f"restaurant {self.restaurant}")
        scope.append(f"since {data['since']}" if data["since"] else "all time")
        rows: list[tuple[str, str]] = [
            ("bookings compared", str(self.compared)),
            ("legacy success rate",
             _cell(data["legacy"]["success_rate"], self.legacy_seated, self.compared)),
            ("V3 (shadow) success rate",
             _cell(data["v3"]["success_rate"], self.v3_seated, self.compared)),
            ("gap (V3 - legacy)", _points(data["gate"]["gap_points"])),
            ("agreement on outcome",
             _cell(data["outcome_agreement"]["rate"], data["outcome_agreement"]["agree"],
                   self.compared)),
            ("agreement on tables (both seated)",
             _cell(data["table_agreement"]["rate"], data["table_agreement"]["agree"],
                   data["table_agreement"]["of_both_seated"])),
            ("full agreement",
             _cell(data["full_agreement"]["rate"], data["full_agreement"]["agree"],
                   self.compared)),
            ("V3-only successes", str(len(self.v3_only))),
            ("legacy-only successes", str(len(self.legacy_only))),
            ("shadow errors",
             f"{len(self.errors)} on {self.error_bookings} booking(s)"),
        ]
        if self.duplicate_comparisons:
            rows.append(("duplicate comparisons", str(self.duplicate_comparisons)))
        width = max(len(k) for k, _ in rows)
        lines = [f"Shadow report ({', '.join(scope)})", ""]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        for title, items in (
            ("V3-only successes", self.v3_only),
            ("legacy-only successes", self.legacy_only),
            ("table mismatches", self.table_mismatches),
        ):
            if items:
                lines += ["", f"{title} (examples):"]
                lines += [f"  {c.booking_id}  {c.why or ''}".rstrip() for c in items[:EXAMPLES]]
        if self.errors:
            lines += ["", "shadow errors (examples):"]
            lines += [f"  {e.booking_id or '-'}  [{e.stage}] {e.error}"
                      for e in self.errors[:EXAMPLES]]
        verdict, reasons = self.verdict()
        gate = (f"Rollout gate (V3 at most {self.max_gap_points:g} points below legacy, "
                f"{self.max_errors} shadow errors): {verdict.upper()}")
        lines += ["", gate]
        lines += [f"  - {r}" for r in reasons]
        return "\n".join(lines)


async def load_report(
    engine: AsyncEngine, *, since: datetime | None = None, restaurant: str | None = None
) -> ShadowReport:
    """The report over comparison and error events written since `since`."""
    rows = await load_events(engine, COMPARISON_EVENT, since=since, restaurant=restaurant)
    error_rows = await load_events(engine, ERROR_EVENT, since=since, restaurant=restaurant)
    seen: set[str] = set()
    comparisons: list[ShadowComparison] = []
    duplicates = 0
    for r in rows:  # newest first: a booking's latest comparison counts
        booking_id = r.booking_id or str(r.context.get("booking_id"))
        if booking_id in seen:
            duplicates += 1
            continue
        seen.add(booking_id)
        comparisons.append(ShadowComparison.from_context(booking_id, r.restaurant_id, r.context))
    errors: list[ErrorEvent] = []
    for r in error_rows:
        errors.append(ErrorEvent(
            booking_id=r.booking_id or r.context.get("booking_id"),
            restaurant_id=r.restaurant_id,
            stage=str(r.context.get("stage", "?")),
            error=str(r.context.get("error", "")),
            at=r.at,
        ))
    return ShadowReport(
        comparisons=tuple(comparisons),
        errors=tuple(errors),
        duplicate_comparisons=duplicates,
        since=since,
        restaurant=restaurant,
    )


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _cell(rate: float | None, part: int, whole: int) -> str:
    return "n/a" if rate is None else f"{rate:.1f}%  ({part}/{whole})"


def _points(gap: float | None) -> str:
    return "n/a" if gap is None else f"{gap:+.1f} points"


def _examples(items: list[ShadowComparison]) -> dict[str, Any]:
    return {
        "count": len(items),
        "examples": [
            {"booking_id": c.booking_id, "restaurant_id": c.restaurant_id or None,
             "legacy_tables": list(c.legacy_tables), "v3_tables": list(c.v3_tables),
             "v3_strategy": c.v3_strategy, "why": c.why}
            for c in items[:EXAMPLES]
        ],
    }
