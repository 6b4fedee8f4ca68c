"""`seatflow report`: the operations dashboard from the database.

Exit codes: 0 no P1 rule fires, 4 a P1 rule fires (so a script can gate a
rollout step on it), 2 usage error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from seatflow.cli.common import print_json, usage, with_stack

EXIT_P1_FIRING = 4
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(value: str, *, now: datetime, option: str) -> datetime:
    """ISO 8601 (UTC when no offset), `now`, or a duration ago: 30m, 24h, 7d."""
    value = value.strip()
    if value == "now":
        return now
    match = _RELATIVE.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except (OverflowError, ValueError):
            usage(f"{option} {value!r}: {amount:g}{unit} ago is before the year 1; "
                  "give a shorter duration or an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        usage(f"{option} {value!r}: expected ISO 8601 (2025-06-01T18:00), 'now' or a "
              "duration ago such as 30m, 24h, 7d")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def report_command(
    since: Annotated[str, typer.Option(help="Start of the range: ISO 8601 or a duration ago "
                                            "(30m, 24h, 7d).")] = "24h",
    until: Annotated[str, typer.Option(help="End of the range (exclusive).")] = "now",
    restaurant: Annotated[str | None, typer.Option(help="Only this restaurant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Operations dashboard: rates, latency, permits, emails, breaker, alert rules.

    Exits 4 when a P1 alert rule fires.
    """
    from seatflow.ops.report import build_report, render

    now = datetime.now(UTC)
    start = parse_moment(since, now=now, option="--since")
    end = parse_moment(until, now=now, option="--until")
    if end <= start:
        usage(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")

    report = with_stack(lambda engine, _: build_report(
        engine, since=start, until=end, restaurant_id=restaurant, now=now), temporal=False)
    if as_json:
        print_json(report.to_dict())
    else:
        import sys

        from rich.console import Console

        # Piped into a file or a CI log: wide enough that rule names never wrap.
        console = Console() if sys.stdout.isatty() else Console(width=140)
        console.print(render(report))
    if report.p1_firing:
        raise typer.Exit(EXIT_P1_FIRING)
