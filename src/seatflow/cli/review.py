"""`seatflow review`: the manual-review queue and operator decisions.

Decisions go to the booking's workflow through the validated Update
`resolve_manual_review_update`, so a bad request is refused by the validator
(exit 1, nothing recorded) and a good one returns the result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from seatflow.cli.bookings import check_uuid, with_stack
from seatflow.cli.common import print_json, refuse, usage

app = typer.Typer(help="The manual-review queue and operator decisions.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BookingId = Annotated[str, typer.Argument(metavar="ID", help="The booking id (a UUID).")]
Actor = Annotated[str, typer.Option("--actor", help="Who decides (recorded with the decision).")]


async def review_queue(engine: Any, restaurant: str | None = None) -> list[dict[str, Any]]:
    from seatflow.storage.review import manual_review_queue

    return [
        {"booking_id": i.booking_id, "restaurant_id": i.restaurant_id,
         "party_size": i.party_size, "start": i.start.isoformat(), "attempts": i.attempts,
         "last_reason": i.last_reason, "since": i.since.isoformat() if i.since else None}
        for i in await manual_review_queue(engine, restaurant)
    ]


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
    rows = with_stack(lambda engine, _c: review_queue(engine, restaurant), temporal=False)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("manual-review queue is empty")
        return
    for r in rows:
        typer.echo(
            f"{r['booking_id']}  {r['restaurant_id']:<18} party {r['party_size']:<3} "
            f"{r['start'][:16]}  attempts {r['attempts']}  waiting {_age(r['since'])}  "
            f"{r['last_reason'] or ''}"
        )


def _decide(booking_id: str, payload: dict[str, Any], as_json: bool) -> None:
    from seatflow.intake.service import BookingActionRefused, resolve_manual_review
    from seatflow.storage.transitions import BookingNotFound

    booking_id = check_uuid(booking_id)

    async def work(engine: Any, client: Any) -> Any:
        return await resolve_manual_review(engine, client, booking_id, payload)

    try:
        result = with_stack(work)
    except BookingActionRefused as exc:
        # Refused, or another decision (an operator, the UI, a cancel, the
        # deadline) resolved the booking first: say what happened.
        refuse(str(exc), as_json=as_json)
    except BookingNotFound:
        refuse(f"booking {booking_id} not found", as_json=as_json)
    if as_json:
        print_json(result)
        return
    tables = ", ".join(result.get("tables") or [])
    typer.echo(
        f"booking {booking_id}: {payload['action']} accepted, now {result['state']}"
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
    payload: dict[str, Any] = {"action": "assign", "table_ids": table_ids, "actor": actor}
    if note:
        payload["note"] = note
    if force:
        payload["force"] = True
    _decide(booking_id, payload, as_json)


@app.command("retry")
def retry_cmd(booking_id: BookingId, actor: Actor, as_json: JsonFlag = False) -> None:
    """Give the booking a fresh set of automatic attempts."""
    _decide(booking_id, {"action": "retry", "actor": actor}, as_json)


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
    _decide(booking_id, {"action": "reject", "actor": actor, "reason": reason}, as_json)
