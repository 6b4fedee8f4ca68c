"""`seatflow restaurants`: import floor plans, list and show restaurants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seatflow.cli.common import EXIT_REFUSED, EXIT_USAGE, print_json, refuse, with_stack

if TYPE_CHECKING:
    from seatflow.floorplan import FloorPlan

app = typer.Typer(help="Restaurants and their floor plans.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
RestaurantId = Annotated[
    str, typer.Argument(metavar="ID", help="The restaurant id, e.g. harbour-kitchen.")
]


def _floorplan(restaurant_id: str, *, as_json: bool = False) -> FloorPlan:
    """The stored restaurant's floor plan; refused when there is no such restaurant."""
    from seatflow.service.restaurants import RestaurantNotFound, restaurant_floorplan

    try:
        return with_stack(lambda engine, _: restaurant_floorplan(engine, restaurant_id),
                          temporal=False)
    except RestaurantNotFound as exc:
        refuse(str(exc), as_json=as_json)


def _columns(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="Floor-plan JSON file (format: docs/floorplan.md).")],
    as_json: JsonFlag = False,
) -> None:
    """Validate a floor plan and create or update its restaurant (all or nothing)."""
    from seatflow.floorplan import FloorPlanError
    from seatflow.floorplan_file import FloorPlanTooLarge, load_floorplan
    from seatflow.service.restaurants import import_restaurant

    try:
        plan = load_floorplan(file)
    except FloorPlanError as exc:
        # Not a floor-plan file at all (a directory, a device, beyond the
        # limits) is a usage error; a floor plan with mistakes is refused.
        code = EXIT_USAGE if isinstance(exc, FloorPlanTooLarge) else EXIT_REFUSED
        if as_json:
            print(
                json.dumps(
                    {"error": f"floor plan {exc.source} is invalid", "problems": exc.problems}
                )
            )
        else:
            typer.echo(f"error: {exc}", err=True)
            typer.echo("nothing was imported", err=True)
        raise typer.Exit(code) from None

    summary = with_stack(lambda engine, _: import_restaurant(engine, plan), temporal=False)
    if as_json:
        print_json(summary.as_dict())
        return
    verb = "created" if summary.restaurant_created else "updated"
    typer.echo(
        f"restaurant {summary.restaurant_id} {verb}: "
        f"{summary.services} services, {summary.zones} zones, "
        f"tables {summary.tables_created} created / {summary.tables_updated} updated / "
        f"{summary.tables_unchanged} unchanged / {summary.tables_deactivated} deactivated, "
        f"{summary.edges} adjacency edges, total capacity {summary.total_capacity}"
    )


@app.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """List restaurants with their active tables and capacity."""
    from dataclasses import asdict

    from seatflow.service.restaurants import list_restaurants

    restaurants = with_stack(lambda engine, _: list_restaurants(engine), temporal=False)
    if as_json:
        print_json([asdict(r) for r in restaurants])
        return
    if not restaurants:
        typer.echo("no restaurants; import one with `seatflow restaurants import FILE.json`")
        return
    typer.echo(
        _columns(
            [
                [r.id, r.name, r.timezone, str(r.zones), str(r.tables), str(r.total_capacity)]
                for r in restaurants
            ],
            ["ID", "NAME", "TIMEZONE", "ZONES", "TABLES", "CAPACITY"],
        )
    )


@app.command("show")
def show_cmd(
    restaurant_id: RestaurantId,
    as_json: JsonFlag = False,
) -> None:
    """Show a restaurant: services, zones, tables and adjacency."""
    plan = _floorplan(restaurant_id, as_json=as_json)
    data = plan.model_dump(mode="json")
    data["restaurant"]["total_capacity"] = plan.total_capacity
    if as_json:
        print_json(data)
        return
    r = plan.restaurant
    typer.echo(
        f"{r.name} ({r.id})  timezone {r.timezone}  buffer {r.buffer_minutes} min  "
        f"capacity {plan.total_capacity}"
    )
    typer.echo("\nservices")
    for s in data["restaurant"]["services"]:
        bands = ", ".join(
            f"{'<=' + str(b['max_party']) if b['max_party'] is not None else 'larger'}: "
            f"{b['minutes']} min"
            for b in s["turn_times"]
        )
        typer.echo(f"  {s['name']:<10} {s['start']}-{s['end']}  turn times {bands}")
    typer.echo("\nzones")
    for z in plan.zones:
        typer.echo(f"  {z.id:<10} {z.name}" + ("" if z.active else "  (inactive)"))
    for group in plan.zone_groups:
        typer.echo(f"  equivalent (re-packing): {' = '.join(group)}")
    typer.echo("\ntables")
    typer.echo(
        "\n".join(
            "  " + line
            for line in _columns(
                [
                    [
                        t.id,
                        str(t.capacity),
                        f"{t.min_party}-{t.max_party or t.capacity}",
                        t.zone,
                        t.mobility,
                        t.category,
                        "active" if t.active else "inactive",
                        t.status,
                    ]
                    for t in plan.tables
                ],
                ["ID", "CAP", "PARTY", "ZONE", "MOBILITY", "CATEGORY", "ACTIVE", "STATUS"],
            ).splitlines()
        )
    )
    typer.echo("\nadjacency")
    typer.echo("  " + (", ".join(f"{a}-{b}" for a, b in plan.edges) or "(none)"))


@app.command("export")
def export_cmd(restaurant_id: RestaurantId) -> None:
    """Print a stored restaurant as a floor-plan file, ready to edit and re-import."""
    plan = _floorplan(restaurant_id)
    print_json(plan.model_dump(mode="json"))
