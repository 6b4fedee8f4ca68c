"""The `seatflow` command line (the README shows each command).

Exit codes: 0 success, 1 the operation was refused (validation, conflict, not
found), 2 usage error (including invalid configuration), 3 `bookings wait`
timed out, 4 `report` found a P1 alert firing.
"""

from __future__ import annotations

import contextlib
import sys
from typing import NoReturn

import typer

from seatflow.api.server import api_command
from seatflow.cli import bookings, db, dev, holds, restaurants, review
from seatflow.cli.availability import availability_command
from seatflow.cli.flags import flags_command
from seatflow.cli.loadtest import loadtest_command
from seatflow.cli.report import report_command
from seatflow.cli.shadow import shadow_report_command
from seatflow.config import ConfigError
from seatflow.intake.relay import intake_command
from seatflow.ops.demo import demo_command

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
app.add_typer(holds.app, name="holds")
app.command("demo")(demo_command)
app.command("shadow-report")(shadow_report_command)
app.command("flags")(flags_command)
app.command("report")(report_command)
app.command("loadtest")(loadtest_command)
app.command("intake")(intake_command)
app.command("availability")(availability_command)
app.command("api")(api_command)


def _known_secrets() -> tuple[str | None, ...]:
    """The configured database password, to scrub from any text we print."""
    import os

    from seatflow.redact import url_password

    secrets = [url_password(os.environ.get("DATABASE_URL"))]
    from seatflow.config import settings

    with contextlib.suppress(Exception):  # a bad configuration has no usable password
        secrets.append(url_password(settings().database_url))
    return tuple(secrets)


def _is_database_error(exc: BaseException) -> bool:
    import socket

    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, (DBAPIError, InterfaceError, OperationalError, ConnectionError,
                        socket.gaierror, TimeoutError)):
        return True
    return type(exc).__module__.startswith("asyncpg")


def main() -> None:
    """Run the CLI. Whatever goes wrong, nothing printed carries the database
    password: configuration errors exit 2, an unreachable or failing database
    exits 1 with one line, and anything else (a bug) prints its traceback with
    secrets masked."""
    try:
        _run()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: str | int | None) -> NoReturn:
    """Exit with `code`. Once the Temporal client has been loaded, exit without
    interpreter finalisation (after atexit handlers and a flush): its Rust
    runtime threads can outlive the event loop and abort a finalising
    interpreter ("Fatal Python error: PyGILState_Release", a known SDK issue),
    turning a finished command into a crash with another exit status."""
    if "temporalio.bridge" not in sys.modules:
        sys.exit(code)
    import atexit
    import logging
    import os

    status = code if isinstance(code, int) else (0 if code is None else 1)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run() -> None:
    from seatflow.redact import redact_secrets

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:
        print(f"usage error: {redact_secrets(str(exc), _known_secrets())}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - reported below, secrets masked
        secrets = _known_secrets()
        if _is_database_error(exc):
            detail = redact_secrets(f"{type(exc).__name__}: {exc}", secrets).splitlines()
            print(f"error: the database failed or is unreachable ({detail[0] if detail else ''}); "
                  "check DATABASE_URL and that PostgreSQL is up (`seatflow dev status`)",
                  file=sys.stderr)
            sys.exit(1)
        import traceback

        print(redact_secrets("".join(traceback.format_exception(exc)), secrets), file=sys.stderr,
              end="")
        sys.exit(1)
