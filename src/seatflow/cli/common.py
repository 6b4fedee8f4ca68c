"""Helpers shared by CLI commands: output, exit codes, async entry, and the
database and Temporal client a command works on."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer

T = TypeVar("T")

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
# Refusals that are the command line's fault (a date past the booking horizon,
# or before yesterday): exit 2, like any other out-of-range option.
OUT_OF_RANGE = ("beyond_horizon", "in_the_past")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def refuse(message: str, *, as_json: bool = False) -> NoReturn:
    """The operation was refused (validation, conflict, not found): exit 1."""
    if as_json:
        print(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def usage(message: str) -> NoReturn:
    typer.echo(f"usage error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def check_uuid(value: str) -> str:
    """A booking id as given on the command line, or a usage error."""
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        usage(f"{value!r} is not a booking id (expected a UUID)")


def with_stack(work: Callable[[Any, Any], Awaitable[T]], *, temporal: bool = True) -> T:
    """Run `work(engine, client)` against the configured database and Temporal
    (`client` is None with `temporal=False`); an unreachable Temporal is refused."""
    from temporalio.client import Client

    from seatflow.config import settings
    from seatflow.service.database import open_database

    cfg = settings()

    async def main() -> T:
        async with open_database(cfg.database_url, pool_size=2, max_overflow=2) as engine:
            client = None
            if temporal:
                try:
                    client = await Client.connect(
                        cfg.temporal_address, namespace=cfg.temporal_namespace
                    )
                except Exception as exc:  # noqa: BLE001 - reported to the person
                    refuse(
                        f"cannot reach Temporal at {cfg.temporal_address} ({exc}); "
                        "is the stack up? try `seatflow dev up`"
                    )
            return await work(engine, client)

    return run(main())


def with_stack_answering(work: Callable[[Any, Any], Awaitable[T]], *, as_json: bool,
                         temporal: bool = True) -> T:
    """`with_stack`, with the service's refusals answered the one way every
    command answers them: NotAvailable exit 1 (with `--json`, its code and
    the nearest times), a date out of range (OUT_OF_RANGE) exit 2, any other
    InvalidBooking exit 1."""
    from seatflow.domain.restaurant import InvalidBooking
    from seatflow.service.bookings import NotAvailable

    try:
        return with_stack(work, temporal=temporal)
    except NotAvailable as exc:
        if as_json:
            print_json({"error": exc.message, "code": exc.code,
                        "nearest": [t.isoformat() for t in exc.nearest]})
            raise typer.Exit(EXIT_REFUSED) from None
        refuse(exc.message)
    except InvalidBooking as exc:
        if exc.code in OUT_OF_RANGE:
            usage(exc.message)
        refuse(exc.message, as_json=as_json)
