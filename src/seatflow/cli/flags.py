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
    from seatflow.config import ConfigError, load_flags, rollout_bucket

    try:
        flags = load_flags()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    data: dict[str, object] = {
        "FEATURE_ASSIGNMENT_PIPELINE_V3": flags.v3,
        "FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW": flags.shadow,
        "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL": flags.max_parallel,
        "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT": flags.rollout_percent,
        "FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS": sorted(flags.restaurant_allowlist),
    }
    if restaurant:
        v3 = flags.v3_enabled_for(restaurant)
        if not flags.v3:
            why = "FEATURE_ASSIGNMENT_PIPELINE_V3 is off"
        elif flags.restaurant_allowlist:
            why = "on the allowlist" if v3 else "not on the allowlist"
        else:
            bucket = rollout_bucket(restaurant)
            why = f"bucket {bucket} {'<' if v3 else '>='} rollout {flags.rollout_percent}%"
        data["decision"] = {
            "restaurant_id": restaurant,
            "pipeline": "v3" if v3 else "legacy",
            "shadow": flags.shadow and not v3,
            "max_parallel": flags.max_parallel,
            "bucket": rollout_bucket(restaurant),
            "why": why,
        }
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key != "decision":
            typer.echo(f"{key:<48} {value}")
    decision = data.get("decision")
    if isinstance(decision, dict):
        typer.echo(
            f"\n{decision['restaurant_id']}: pipeline {decision['pipeline']}"
            f"{' + shadow' if decision['shadow'] else ''}, max parallel "
            f"{decision['max_parallel']} ({decision['why']})"
        )
