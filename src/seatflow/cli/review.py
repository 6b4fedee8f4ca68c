"""`seatflow review`: the manual-review queue and operator decisions.

Decisions go through `seatflow.service.review.resolve_manual_review`, the
function the API calls too: the workflow's validated Update, made by
`--actor`. A refused decision exits 1 and records nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from seatflow.cli.common import check_uuid, print_json, refuse, usage, with_stack
from seatflow.domain.localtime import local_time

app = typer.Typer(help="The manual-review queue and operator decisions.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BookingId = Annotated[str, typer.Argument(metavar="ID", help="The booking id (a UUID).")]
Actor = Annotated[str, typer.Option("--actor", help="Who decides (recorded with the decision).")]


def _age(since: str | None) -> str:
    if not since:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@app.command("list")
def list_cmd(
    restaurant: Annotated[str | None, typer.Option("--restaurant", help="Only this one.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bookings waiting for an operator, oldest service first, with age and last reason."""
    from seatflow.service.review import review_queue

    rows = with_stack(lambda engine, _c: review_queue(engine, restaurant), temporal=False)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("manual-review queue is empty")
        return
    for r in rows:
        typer.echo(_line(r))


def _line(r: dict[str, Any]) -> str:
    """One waiting booking: its start on the restaurant's clock, zone named."""
    return (
        f"{r['booking_id']}  {r['restaurant_id']:<18} party {r['party_size']:<3} "
        f"{local_time(r['start'], r.get('timezone'))}  attempts {r['attempts']}  "
        f"waiting {_age(r['since'])}  {r['last_reason'] or ''}"
    )


def _decide(booking_id: str, decision: dict[str, Any], actor: str, as_json: bool) -> None:
    from seatflow.service.bookings import BookingActionRefused, BookingNotFound
    from seatflow.service.review import resolve_manual_review

    booking_id = check_uuid(booking_id)

    async def work(engine: Any, client: Any) -> Any:
        return await resolve_manual_review(engine, client, booking_id, decision, actor=actor)

    try:
        result = with_stack(work)
    except BookingActionRefused as exc:
        # Refused, or another decision (an operator, the UI, a cancel, the
        # deadline) resolved the booking first: say what happened.
        message = str(exc)
        refuse(message if message.startswith(f"booking {booking_id}")
               else f"booking {booking_id}: {message}", as_json=as_json)
    except BookingNotFound as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(result)
        return
    tables = ", ".join(result.get("tables") or [])
    typer.echo(
        f"booking {booking_id}: {decision['action']} accepted, now {result['state']}"
        + (f" at {tables}" if tables and result["state"] == "confirmed" else "")
    )


@app.command("assign")
def assign_cmd(
    booking_id: BookingId,
    tables: Annotated[str, typer.Option("--tables", help="Comma list of table ids, e.g. T4,T5.")],
    actor: Actor,
    note: Annotated[str | None, typer.Option("--note")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Override the overage, zone and adjacency rules (recorded with the "
                        "actor). Never overrides capacity, fixed tables, or a taken or "
                        "inactive table.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Seat a manual-review booking at these tables, checked like any plan
    (same atomic confirm)."""
    table_ids = [t.strip() for t in tables.split(",")]
    if not tables.strip() or any(not t for t in table_ids):
        usage(f"--tables {tables!r}: give table ids separated by commas, e.g. T4,T5")
    decision: dict[str, Any] = {"action": "assign", "table_ids": table_ids}
    if note:
        decision["note"] = note
    if force:
        decision["force"] = True
    _decide(booking_id, decision, actor, as_json)


@app.command("retry")
def retry_cmd(booking_id: BookingId, actor: Actor, as_json: JsonFlag = False) -> None:
    """Give the booking a fresh set of automatic attempts."""
    _decide(booking_id, {"action": "retry"}, actor, as_json)


@app.command("reject")
def reject_cmd(
    booking_id: BookingId,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded, shown to operators).")],
    actor: Actor,
    as_json: JsonFlag = False,
) -> None:
    """Fail the booking with the operator's reason."""
    if not reason.strip():
        usage("--reason must not be empty")
    _decide(booking_id, {"action": "reject", "reason": reason}, actor, as_json)
