"""`seatflow restaurants`: placeholder, being built."""

from __future__ import annotations

import typer

app = typer.Typer(help="restaurants commands", no_args_is_help=True)
