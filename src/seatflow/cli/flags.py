"""`seatflow flags`: the effective rollout decision for a restaurant."""

from __future__ import annotations

from typing import Annotated

import typer

from seatflow.cli.common import EXIT_USAGE, print_json


def flags_command(
    restaurant: Annotated[
        str | None, typer.Option("--restaurant", help="Restaurant id to decide for.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Print the feature flags and the pipeline decision (V3 or legacy, shadow,
    parallelism) that a booking of this restaurant would get right now."""
    from seatflow.config import ConfigError
    from seatflow.service.rollout import rollout

    try:
        now = rollout(restaurant)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        print_json(now.to_dict())
        return
    for key, value in now.flags.items():
        typer.echo(f"{key:<48} {value}")
    decision = now.decision
    if decision is not None:
        typer.echo(
            f"\n{decision.restaurant_id}: pipeline {decision.pipeline}"
            f"{' + shadow' if decision.shadow else ''}, max parallel "
            f"{decision.max_parallel} ({decision.why})"
        )
