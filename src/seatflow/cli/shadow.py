"""`seatflow shadow-report`: legacy vs V3 agreement from shadow comparisons."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from seatflow.cli.common import print_json, refuse, usage, with_stack

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or timestamp (UTC when no offset), or a look-back such
    as `90m`, `24h`, `7d`, `2w`."""
    match = _RELATIVE.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected an ISO 8601 time (2025-06-01, 2025-06-01T18:00+01:00) "
            "or a look-back like 90m, 24h, 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def shadow_report_command(
    since: Annotated[
        str | None,
        typer.Option("--since", help="ISO 8601 time, or a look-back like 24h or 7d."),
    ] = None,
    restaurant: Annotated[
        str | None, typer.Option("--restaurant", help="Only this restaurant.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Legacy vs V3: agreement, one-sided successes, shadow errors and the rollout gate."""
    from seatflow.ops.shadow_report import load_report

    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        usage(str(exc))

    try:
        report = with_stack(lambda engine, _: load_report(engine, since=start,
                                                          restaurant=restaurant), temporal=False)
    except OSError as exc:
        refuse(f"cannot reach the database ({exc}); is the stack up? try `seatflow dev up`",
               as_json=as_json)
    if as_json:
        print_json(report.to_dict())
    else:
        typer.echo(report.render())
