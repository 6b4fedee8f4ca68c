"""`seatflow bookings`: create, show, wait for, cancel, resend a guest message
and find stuck bookings."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from seatflow.cli.common import (
    EXIT_TIMEOUT,
    check_uuid,
    print_json,
    refuse,
    usage,
    with_stack,
    with_stack_answering,
)
from seatflow.domain.localtime import local_time, zone_name

app = typer.Typer(help="Create, inspect and cancel bookings.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BookingId = Annotated[str, typer.Argument(metavar="ID", help="The booking id (a UUID).")]


@app.command("create")
def create_cmd(
    restaurant: Annotated[str, typer.Option("--restaurant", help="Restaurant id.")],
    party: Annotated[int, typer.Option("--party", help="Party size.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601; local time if no offset.")],
    zone: Annotated[str | None, typer.Option("--zone", help="Preferred zone (soft).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Guest name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Guest email.")] = None,
    require_availability: Annotated[bool, typer.Option(
        "--require-availability",
        help="Refuse (exit 1, nothing written) a time with no valid plan now, "
             "naming the nearest available times.")] = False,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key",
        help="Retry-safe: the same key returns the booking already created.")] = None,
    hold: Annotated[str | None, typer.Option(
        "--hold", help="Book on this hold (`seatflow holds create`): its tables, first "
        "attempt.")] = None,
    holder: Annotated[str, typer.Option(
        "--holder", help="Whose hold --hold is (the API's holds are their token's name).")
    ] = "cli",
    as_json: JsonFlag = False,
) -> None:
    """Insert a booking and start its assignment workflow; prints the booking id."""
    from seatflow.config import settings
    from seatflow.domain.guest import check_guest_email, check_guest_name
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.service.bookings import request_booking

    try:
        email = check_guest_email(email)
        name = check_guest_name(name)
    except InvalidBooking as exc:
        refuse(exc.message, as_json=as_json)

    async def work(engine: Any, client: Any) -> Any:
        return await request_booking(
            engine, client, restaurant, party_size=party, start=start, zone_preference=zone,
            guest_name=name, guest_email=email, idempotency_key=idempotency_key,
            hold_id=hold, holder=holder if hold is not None else None,
            require_availability=require_availability, task_queue=settings().task_queue,
            engine_config=settings().engine_config(),
            horizon_days=settings().booking_horizon_days,
        )

    created = with_stack_answering(work, as_json=as_json)
    if as_json:
        print_json({"booking_id": created.booking_id, "workflow_id": created.workflow_id,
                    "workflow_started": created.workflow_started, "created": created.created,
                    "assignment_state": created.assignment_state})
    else:
        typer.echo(created.booking_id)
        if not created.workflow_started:
            typer.echo(
                "note: Temporal was unreachable; the booking is kept and its workflow will be "
                "started by the intake relay", err=True,
            )


def _render(view: dict[str, Any]) -> str:
    tz = view.get("timezone")
    lines = [
        f"booking     {view['booking_id']}",
        f"restaurant  {view['restaurant_id']}   party {view['party_size']}",
        # On the restaurant's clock, as the floor staff read it, zone named.
        (f"time        {local_time(view['start'], tz, named=False)} -> "
         f"{local_time(view['end'], tz, '%H:%M')}"),
        (
            f"status      {view['status']}   state {view['assignment_state']} "
            f"(v{view['assignment_state_version']})   pipeline "
            f"{view['assignment_pipeline'] or '-'}"
        ),
        (
            f"tables      {', '.join(view['tables']) or '-'}   strategy "
            f"{view['assignment_strategy'] or '-'}"
        ),
    ]
    if view["assignment_state"] != "confirmed" and view["last_reason"]:
        lines.append(f"why         {view['last_reason']}")
    email = view["email"]
    unsent = "not sent" + (f" ({email['status']}: {email['error']})" if email.get("error") else "")
    if email["status"] == "no_address":
        unsent = "no address (nothing is sent)"
    lines.append(
        f"email       "
        f"{'sent ' + local_time(email['sent_at'], tz) if email['sent'] else unsent}"
        + (f" ({email['duplicates_suppressed']} duplicate sends suppressed)"
           if email["duplicates_suppressed"] else "")
    )
    for m in view["messages"]:
        if m["kind"] != "confirmation":
            said = {"sent": f"sent {local_time(m['sent_at'], tz)}", "no_address": "no address"}.get(
                m["status"], m["status"] + (f": {m['error']}" if m["error"] else ""))
            lines.append(f"  {m['kind']:<14} {said}")
    if view["attempts"]:
        lines.append("attempts")
        for a in view["attempts"]:
            lines.append(
                f"  #{a['attempt_no']} {a['pipeline']:<6} {a['result']:<16} "
                f"{a['strategy'] or '':<14} {a['reason'] or ''}"
            )
    lines.append(f"history ({zone_name(tz)})")
    for h in view["history"]:
        who = f" by {h['actor']}" if h["actor"] else ""
        why = f": {h['reason']}" if h["reason"] else ""
        at = local_time(h["at"], tz, "%Y-%m-%d %H:%M:%S", named=False)
        lines.append(f"  {at}  v{h['version']:<3} {h['from'] or '-'} -> {h['to']}{who}{why}")
    return "\n".join(lines)


@app.command("show")
def show_cmd(booking_id: BookingId, as_json: JsonFlag = False) -> None:
    """Everything about one booking: state, tables, attempts, history, email
    (`--json`: the same JSON as the API's `GET /v1/bookings/{id}`)."""
    from seatflow.service.bookings import BookingNotFound, booking_view

    booking_id = check_uuid(booking_id)
    try:
        view = with_stack(lambda engine, _c: booking_view(engine, booking_id), temporal=False)
    except BookingNotFound as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(view)
    else:
        typer.echo(_render(view))


@app.command("wait")
def wait_cmd(
    booking_id: BookingId,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Wait until the booking is confirmed, in manual review, failed or cancelled.
    Exits 0 when settled, 3 on timeout."""
    from seatflow.service.bookings import BookingNotFound, wait_until_settled

    booking_id = check_uuid(booking_id)
    if not math.isfinite(timeout) or timeout < 0:
        usage(f"--timeout {timeout!r}: must be a finite number of seconds >= 0")

    async def work(engine: Any, _client: Any) -> tuple[bool, dict[str, Any]]:
        return await wait_until_settled(engine, booking_id, timeout)

    try:
        settled, view = with_stack(work, temporal=False)
    except BookingNotFound as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(view)
    else:
        typer.echo(_render(view))
    if not settled:
        typer.echo(f"timed out after {timeout:g}s in state {view['assignment_state']}", err=True)
        raise typer.Exit(EXIT_TIMEOUT)


@app.command("cancel")
def cancel_cmd(
    booking_id: BookingId,
    actor: Annotated[str, typer.Option("--actor", help="Who cancels.")] = "cli",
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a booking: releases its tables and ends its workflow (in the
    database when the workflow has already closed); a guest who had been
    confirmed gets one cancellation message."""
    from seatflow.service.bookings import (
        BookingActionRefused,
        BookingNotFound,
        cancel_booking_request,
    )

    booking_id = check_uuid(booking_id)

    from seatflow.config import settings

    async def work(engine: Any, client: Any) -> dict[str, Any]:
        return await cancel_booking_request(engine, client, booking_id, actor=actor,
                                            reason=reason, task_queue=settings().task_queue)

    try:
        view = with_stack(work)
    except (BookingNotFound, BookingActionRefused) as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(view)
    else:
        typer.echo(f"booking {booking_id} cancelled; tables released")


@app.command("resume")
def resume_cmd(booking_id: BookingId, as_json: JsonFlag = False) -> None:
    """Start a new workflow run for a booking that is not settled when its
    workflow failed or was terminated (or never started)."""
    from seatflow.config import settings
    from seatflow.service.bookings import BookingActionRefused, BookingNotFound, resume_booking

    booking_id = check_uuid(booking_id)

    async def work(engine: Any, client: Any) -> Any:
        return await resume_booking(engine, client, booking_id, task_queue=settings().task_queue)

    try:
        resumed = with_stack(work)
    except (BookingNotFound, BookingActionRefused) as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json({"booking_id": resumed.booking_id, "workflow_id": resumed.workflow_id,
                    "run_id": resumed.run_id, "previous_status": resumed.previous_status})
    else:
        typer.echo(f"booking {booking_id}: new workflow run {resumed.run_id} started "
                   f"(previous run: {resumed.previous_status.lower()})")


@app.command("resend-email")
def resend_email_cmd(
    booking_id: BookingId,
    kind: Annotated[str, typer.Option(
        "--kind", help="confirmation, table_changed or cancellation.")] = "confirmation",
    actor: Annotated[str, typer.Option("--actor", help="Who asks (recorded).")] = "cli",
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the outcome.")] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Send a booking's failed (or never sent) guest message again, for real:
    re-armed in the outbox and sent by a GuestEmailWorkflow. Exits 0 when
    sent, 1 when refused or failed again, 3 when still sending after --wait."""
    from seatflow.config import settings
    from seatflow.service.bookings import BookingActionRefused, BookingNotFound
    from seatflow.service.guest_mail import resend_email

    booking_id = check_uuid(booking_id)
    if not math.isfinite(wait) or wait < 0:
        usage(f"--wait {wait!r}: must be a finite number of seconds >= 0")

    async def work(engine: Any, client: Any) -> Any:
        return await resend_email(engine, client, booking_id, kind, actor=actor,
                                  task_queue=settings().task_queue, wait_seconds=wait)

    try:
        done = with_stack(work)
    except (BookingNotFound, BookingActionRefused) as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json({"booking_id": done.booking_id, "kind": done.kind,
                    "workflow_id": done.workflow_id, "outcome": done.outcome,
                    "reason": done.reason})
    else:
        why = f": {done.reason}" if done.reason else ""
        typer.echo(f"booking {booking_id}: {done.kind} message {done.outcome}{why}")
    if done.outcome == "sending":
        raise typer.Exit(EXIT_TIMEOUT)
    if done.outcome != "sent":
        raise typer.Exit(1)


def parse_age(text: str, *, now: datetime | None = None) -> timedelta:
    """A non-negative, finite age such as 10m, whose cutoff (now - age) is a date."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    hint = f"--older-than {text!r}: use a number with s, m, h or d, e.g. 10m"
    try:
        amount = float(text[:-1])
        unit = units[text[-1]]
    except (KeyError, ValueError, IndexError):
        usage(hint)
    if not math.isfinite(amount) or amount < 0:
        usage(f"{hint} (a finite number >= 0)")
    try:
        age = timedelta(seconds=amount * unit)
        (now or datetime.now(UTC)) - age
    except (OverflowError, ValueError):
        usage(f"--older-than {text!r}: reaches before the year 1; give a shorter age")
    return age


@app.command("stuck")
def stuck_cmd(
    older_than: Annotated[str, typer.Option("--older-than", help="e.g. 10m, 1h")] = "10m",
    ui: Annotated[str, typer.Option("--ui", help="Temporal UI base URL.")] = "http://localhost:8233",
    as_json: JsonFlag = False,
) -> None:
    """Bookings whose workflow is still open and not settled, older than a threshold,
    from the Temporal visibility API, with the UI link of each."""
    from seatflow.config import settings
    from seatflow.service.bookings import stuck_bookings

    age = parse_age(older_than)

    async def work(_engine: Any, client: Any) -> list[dict[str, Any]]:
        return await stuck_bookings(client, age, ui=ui, namespace=settings().temporal_namespace)

    rows = with_stack(work)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no open booking workflow older than {older_than}")
    for r in rows:
        typer.echo(f"{r['booking_id']}  {r['restaurant_id']:<18} {r['state']:<24} "
                   f"attempts {r['attempts']}  {r['ui']}")
