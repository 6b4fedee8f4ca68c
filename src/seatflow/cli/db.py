"""`seatflow db`: schema migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database schema commands.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(
    revision: str = typer.Argument("head", help="Target revision (default: head)."),
) -> None:
    """Apply migrations to DATABASE_URL (or the embedded server under var/pg)."""
    from seatflow.service.database import migrate

    migrate(revision)
    typer.echo(f"database at {revision}")


@app.command("downgrade")
def downgrade_cmd(
    revision: str = typer.Argument(..., help="Target revision, e.g. base."),
) -> None:
    """Revert migrations (used by tests and for rollbacks)."""
    from seatflow.service.database import revert

    revert(revision)
    typer.echo(f"database at {revision}")
