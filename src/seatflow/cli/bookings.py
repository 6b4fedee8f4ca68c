"""`seatflow bookings`: create, show and wait for bookings."""

from __future__ import annotations

import typer

app = typer.Typer(help="Booking commands.", no_args_is_help=True)
