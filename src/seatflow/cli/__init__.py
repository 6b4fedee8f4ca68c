"""The `seatflow` command line (DESIGN.md section 8).

Exit codes: 0 success, 1 the operation was refused (validation, conflict, not
found), 2 usage error (including invalid configuration), 3 `bookings wait`
timed out, 4 `report` found a P1 alert firing.
"""

from __future__ import annotations

import sys

import typer

from seatflow.api.server import api_command
from seatflow.cli import bookings, db, dev, restaurants, review
from seatflow.cli.availability import availability_command
from seatflow.cli.flags import flags_command
from seatflow.cli.loadtest import loadtest_command
from seatflow.cli.report import report_command
from seatflow.cli.shadow import shadow_report_command
from seatflow.config import ConfigError
from seatflow.demo import demo_command
from seatflow.intake_relay import intake_command

app = typer.Typer(
    name="seatflow",
    help="Assign restaurant bookings to tables with durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(db.app, name="db")
app.add_typer(restaurants.app, name="restaurants")
app.add_typer(bookings.app, name="bookings")
app.add_typer(review.app, name="review")
app.command("demo")(demo_command)
app.command("shadow-report")(shadow_report_command)
app.command("flags")(flags_command)
app.command("report")(report_command)
app.command("loadtest")(loadtest_command)
app.command("intake")(intake_command)
app.command("availability")(availability_command)
app.command("api")(api_command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        sys.exit(2)
