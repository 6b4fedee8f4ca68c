"""`seatflow dev`: the embedded local stack (PostgreSQL, Temporal, workers).

A thin layer over `seatflow.ops.devstack`, which tests, the demo and the load test
call directly.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from seatflow.cli.common import EXIT_REFUSED, print_json, refuse

if TYPE_CHECKING:
    from seatflow.ops.devstack import StackStatus

app = typer.Typer(help="The embedded local stack: PostgreSQL, Temporal dev server, workers.",
                  no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")
PORT_OPTION = typer.Option(
    None, "--port", help="Temporal frontend port (default 7233, or SEATFLOW_DEV_TEMPORAL_PORT)."
)
UI_PORT_OPTION = typer.Option(
    None, "--ui-port", help="Temporal Web UI port (default frontend port + 1000)."
)
API_PORT_OPTION = typer.Option(
    None, "--api-port", help="HTTP API port (default 8000, or SEATFLOW_DEV_API_PORT)."
)


@app.command("up")
def up_cmd(
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Worker processes to run (default: one per core)."),
    port: int | None = PORT_OPTION,
    ui_port: int | None = UI_PORT_OPTION,
    api_port: int | None = API_PORT_OPTION,
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for each piece."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start what is not running yet (running pieces are kept) and print where it is."""
    from seatflow.ops import devstack

    started = time.monotonic()
    try:
        stack = devstack.up(workers, temporal_port=port, ui_port=ui_port, timeout=timeout,
                             api_port=api_port)
    except devstack.DevStackError as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json({**stack.to_dict(), "seconds": round(time.monotonic() - started, 2)})
    else:
        _print_status(stack)
        typer.echo(f"\nready in {time.monotonic() - started:.1f} s. "
                   f"Temporal UI: {stack.ui_url or 'not managed by dev up'}. "
                   f"API: {stack.api_url or 'not running'}")
        typer.echo("stop it with: seatflow dev down")
    if any(w.state != "running" for w in stack.workers):
        if not as_json:
            typer.echo("error: a worker is not running (see its log above)", err=True)
        raise typer.Exit(EXIT_REFUSED)


@app.command("down")
def down_cmd(as_json: bool = JSON_OPTION) -> None:
    """Stop only what `dev up` started: workers, the Temporal dev server, PostgreSQL."""
    from seatflow.ops import devstack

    try:
        stopped = devstack.down()
    except devstack.DevStackError as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json({"stopped": stopped})
    elif stopped:
        typer.echo("stopped: " + ", ".join(stopped))
    else:
        typer.echo("nothing was running")


@app.command("status")
def status_cmd(as_json: bool = JSON_OPTION) -> None:
    """What runs and where: UI address, database URL, Temporal address, pids, logs."""
    from seatflow.ops import devstack

    stack = devstack.status()
    if as_json:
        print_json(stack.to_dict())
    else:
        _print_status(stack)


@app.command("restart-worker")
def restart_worker_cmd(
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="How many to run afterwards (default: as before)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Kill the worker processes and start them again."""
    from seatflow.ops import devstack

    try:
        stack = devstack.restart_workers(workers)
    except devstack.DevStackError as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(stack.to_dict())
    else:
        _print_status(stack)


def _print_status(stack: StackStatus) -> None:
    from seatflow.ops.devstack import mask_password

    typer.echo(f"home:      {stack.home}")
    typer.echo(f"ui:        {stack.ui_url or '-'}")
    typer.echo(f"api:       {stack.api_url or '-'}")
    if stack.host_url:  # the day's timeline for the floor staff (docs/host.md)
        typer.echo(f"host:      {stack.host_url}<restaurant id>  (sign in with an API token)")
    else:
        typer.echo("host:      -")
    typer.echo(f"temporal:  {stack.temporal_address or '-'} (namespace {stack.namespace}, "
               f"task queue {stack.task_queue})")
    typer.echo(f"database:  {mask_password(stack.database_url) or '-'}")
    typer.echo("")
    width = max((len(c.name) for c in stack.components), default=8)
    for c in stack.components:
        pid = f"pid {c.pid}" if c.pid else ""
        parts = [c.name.ljust(width), c.state.ljust(8), pid.ljust(11)]
        if c.log:
            parts.append(f"log {c.log}")
        if c.detail:
            parts.append(f"({c.detail})")
        typer.echo("  ".join(parts).rstrip())
