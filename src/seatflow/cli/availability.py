"""`seatflow availability`: which start times have a valid table plan right now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import typer

from seatflow.cli.common import print_json, usage, with_stack_answering


def availability_command(
    restaurant: Annotated[str, typer.Option("--restaurant", help="Restaurant id.")],
    party: Annotated[int, typer.Option("--party", help="Party size.")],
    day: Annotated[
        str | None, typer.Option("--date", help="Local date, e.g. 2026-12-01.")
    ] = None,
    window_from: Annotated[
        str | None, typer.Option("--from", help="Window start (ISO 8601; local if no offset).")
    ] = None,
    window_to: Annotated[
        str | None, typer.Option("--to", help="Window end (ISO 8601; local if no offset).")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the start times without a plan, and why.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Start times of the restaurant's services that have a valid table plan now,
    for one party size, on a date or in a window (same rules as the pipeline;
    nothing is written)."""
    from seatflow.config import settings
    from seatflow.service.availability import check_availability

    if (day is None) == (window_from is None and window_to is None):
        usage("give --date, or --from and --to")
    when: date | None = None
    window: tuple[datetime, datetime] | None = None
    if day is not None:
        try:
            when = date.fromisoformat(day.strip())
        except ValueError:
            usage(f"--date {day!r} is not a date (e.g. 2026-12-01)")
    else:
        if window_from is None or window_to is None:
            usage("--from and --to go together")
        try:
            window = (datetime.fromisoformat(window_from.strip()),
                      datetime.fromisoformat(window_to.strip()))
        except ValueError:
            usage("--from/--to must be ISO 8601 date-times (e.g. 2026-12-01T18:00)")
    config = settings().engine_config()

    async def work(engine: Any, _client: Any) -> Any:
        return await check_availability(engine, restaurant, party, day=when, window=window,
                                        config=config, horizon_days=horizon_days)

    horizon_days = settings().booking_horizon_days
    found = with_stack_answering(work, as_json=as_json, temporal=False)
    if as_json:
        print_json(found.to_dict())
        return
    starts = found.available_starts
    typer.echo(
        f"{found.restaurant_id}: party of {found.party_size}, "
        f"{found.window_start:%Y-%m-%d %H:%M} to {found.window_end:%Y-%m-%d %H:%M} "
        f"({found.timezone}), every {found.slot_minutes} min"
    )
    if not found.slots:
        typer.echo("no service in that window")
        return
    typer.echo(f"{len(starts)} of {len(found.slots)} start times available")
    if found.safety_stop:
        typer.echo("the re-packing search's safety stop fired (the machine is overloaded): "
                   "times it left undecided may be available on a retry")
    for slot in found.slots:
        if slot.available:
            note = " (by re-seating bookings that have not started)" if slot.repack else ""
            typer.echo(f"  {slot.start:%Y-%m-%d %H:%M}  {slot.service:<10} available{note}")
        elif show_all:
            typer.echo(f"  {slot.start:%Y-%m-%d %H:%M}  {slot.service:<10} -  {slot.reason}")
