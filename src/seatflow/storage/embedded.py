"""The embedded PostgreSQL server from pgserver, for local runs and tests."""

from __future__ import annotations

import os
from pathlib import Path

from seatflow.config import project_root


def start_embedded_postgres(data_dir: Path, *, persistent: bool = True) -> str:
    """Start (or join) the pgserver instance in `data_dir`; returns its libpq URL.

    `persistent=True` leaves the server running after this process exits (the
    dev stack); `False` stops it with the last process that uses it (tests).
    """
    import pgserver  # imported lazily: it is only needed for the embedded stack

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(  # type: ignore[attr-defined]
        data_dir, cleanup_mode=None if persistent else "stop"
    )
    return str(server.get_uri())


def default_data_dir() -> Path:
    return project_root() / "var" / "pg"


def resolve_database_url(explicit: str | None = None) -> str:
    """DATABASE_URL when set, otherwise the embedded server under var/pg."""
    from seatflow.config import check_database_url

    url = explicit or os.environ.get("DATABASE_URL")
    if url:
        return check_database_url(url)
    return start_embedded_postgres(default_data_dir())
