"""`seatflow holds`: hold a time's tables for a few minutes, release a hold,
list a day's live holds (the same service functions as the API's
`/v1/restaurants/{id}/holds`)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import typer

from seatflow.cli.common import print_json, refuse, usage, with_stack, with_stack_answering

app = typer.Typer(help="Holds (slot locks): a time's tables held while a guest decides.",
                  no_args_is_help=True)

Restaurant = Annotated[str, typer.Option("--restaurant", help="Restaurant id.")]
Holder = Annotated[str, typer.Option(
    "--holder", help="Who holds it (the API's holds are their token's name).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command("create")
def create_cmd(
    restaurant: Restaurant,
    party: Annotated[int, typer.Option("--party", help="Party size.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601; local time if no offset.")],
    holder: Holder = "cli",
    minutes: Annotated[float | None, typer.Option(
        "--minutes", min=0.01, max=60, help="How long (default SEATFLOW_HOLD_MINUTES).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold the tables of a plan for the party at --start; prints the hold id
    (book on it with `seatflow bookings create --hold`)."""
    from seatflow.config import settings
    from seatflow.service.holds import hold_dict, request_hold

    conf = settings()

    async def work(engine: Any, _client: Any) -> Any:
        return await request_hold(
            engine, restaurant, holder, party_size=party, start=start,
            config=conf.engine_config(), ttl_seconds=(minutes or conf.hold_minutes) * 60,
            max_per_holder=conf.hold_max_per_token, horizon_days=conf.booking_horizon_days)

    hold = with_stack_answering(work, as_json=as_json, temporal=False)
    if as_json:
        print_json(hold_dict(hold))
        return
    typer.echo(hold.hold_id)
    typer.echo(f"tables {', '.join(hold.tables)} held until {hold.expires_at.isoformat()}",
               err=True)


@app.command("release")
def release_cmd(
    restaurant: Restaurant,
    hold_id: Annotated[str, typer.Argument(help="The hold id.")],
    holder: Holder = "cli",
) -> None:
    """Release a hold now (its tables are free again at once)."""
    from seatflow.service.bookings import BookingActionRefused
    from seatflow.service.holds import release_hold

    try:
        hold_id = str(uuid.UUID(hold_id))
    except ValueError:
        usage(f"{hold_id!r} is not a hold id (expected a UUID)")

    async def work(engine: Any, _client: Any) -> None:
        await release_hold(engine, restaurant, holder, hold_id)

    try:
        with_stack(work, temporal=False)
    except BookingActionRefused as exc:
        refuse(exc.message)
    typer.echo(f"released {hold_id}")


@app.command("list")
def list_cmd(
    restaurant: Restaurant,
    day: Annotated[str | None, typer.Option(
        "--date", help="Only those on this local date, e.g. 2026-12-01.")] = None,
    holder: Annotated[str | None, typer.Option(
        "--holder", help="Only this holder's (the API lists its token's own).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The restaurant's live holds (the API's `GET .../holds`)."""
    from seatflow.config import settings
    from seatflow.service.holds import hold_dict, list_holds

    when: date | None = None
    if day is not None:
        try:
            when = date.fromisoformat(day.strip())
        except ValueError:
            usage(f"--date {day!r} is not a date (e.g. 2026-12-01)")

    async def work(engine: Any, _client: Any) -> Any:
        return await list_holds(engine, restaurant, day=when, holder=holder,
                                horizon_days=settings().booking_horizon_days)

    found = with_stack_answering(work, as_json=as_json, temporal=False)
    if as_json:
        print_json([{**hold_dict(h), "holder": h.holder} for h in found])
        return
    if not found:
        typer.echo("no live holds")
    for h in found:
        booked = f" booked {h.booking_id}" if h.booking_id else ""
        typer.echo(f"  {h.start:%Y-%m-%d %H:%M}  party {h.party_size}  "
                   f"{','.join(h.tables):<12} {h.holder}  until {h.expires_at:%H:%M:%S}{booked}")
