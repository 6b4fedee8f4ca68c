"""Helpers shared by CLI commands: output, exit codes, async entry."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

T = TypeVar("T")

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


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
