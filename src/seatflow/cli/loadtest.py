"""`seatflow loadtest`: concurrent bookings against the running stack.

Exit codes: 0 every booking settled and the invariants hold, 1 a double-booked
table or a duplicate email was found (or the test could not run), 2 usage
error, 3 some bookings had not settled before --timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from seatflow.cli.common import EXIT_REFUSED, EXIT_TIMEOUT, print_json, refuse, run, usage


def loadtest_command(
    bookings: Annotated[int, typer.Option("--bookings", help="How many bookings to make.")] = 200,
    restaurants: Annotated[int, typer.Option("--restaurants",
                                             help="Spread over loadtest-1..R.")] = 10,
    concurrency: Annotated[int, typer.Option("--concurrency",
                                             help="Bookings being created at once.")] = 20,
    rate: Annotated[float | None, typer.Option("--rate", help="Steady arrivals per second "
                                                               "(default: burst).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for bookings to settle.")]
    = 600.0,
    floorplan: Annotated[Path | None, typer.Option(help="Floor plan to copy for the "
                                                        "restaurants.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for party sizes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Book N dinners over R restaurants through the running stack and measure."""
    from rich.console import Console
    from temporalio.client import Client

    from seatflow.config import load_flags, settings
    from seatflow.ops.loadtest import LoadtestError, render, run_loadtest
    from seatflow.service.database import open_database

    if bookings < 1 or restaurants < 1 or concurrency < 1:
        usage("--bookings, --restaurants and --concurrency must be at least 1")
    if rate is not None and rate <= 0:
        usage("--rate must be positive")
    cfg = settings()
    console = Console(stderr=True)
    mailbox = cfg.mailbox_path() if cfg.mail_transport == "file" else None

    async def main() -> Any:
        async with open_database(cfg.database_url, pool_size=min(concurrency, 20) + 2,
                                 max_overflow=4) as engine:
            try:
                client = await Client.connect(cfg.temporal_address,
                                              namespace=cfg.temporal_namespace)
            except Exception as exc:  # noqa: BLE001 - reported to the person
                refuse(f"cannot reach Temporal at {cfg.temporal_address} ({exc}); "
                       "is the stack up? try `seatflow dev up`", as_json=as_json)
            return await run_loadtest(
                engine, client, bookings=bookings, restaurants=restaurants,
                task_queue=cfg.task_queue, concurrency=concurrency, rate=rate,
                mailbox=mailbox, floorplan=floorplan, timeout=timeout, console=console,
                show_progress=not as_json, seed=seed,
                # What this shell's flags say; the workers' environment decides.
                max_parallel=load_flags().max_parallel,
            )

    try:
        result = run(main())
    except LoadtestError as exc:
        refuse(str(exc), as_json=as_json)
    if as_json:
        print_json(result.to_dict())
    else:
        Console().print(render(result))
    if result.unsettled:
        raise typer.Exit(EXIT_TIMEOUT)
    if not result.invariants_hold:
        raise typer.Exit(EXIT_REFUSED)
