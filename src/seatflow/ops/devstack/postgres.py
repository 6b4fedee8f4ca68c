"""PostgreSQL in the stack: the embedded server (pgserver, data in var/pg),
started or adopted by `up`, reported by `status`, stopped by `down` with
pg_ctl; or an external one (`DATABASE_URL`), only checked for reachability."""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # shipped with pgserver, which we need anyway

from seatflow.config import Settings
from seatflow.ops.devstack.model import Component, DevStackError, mask_password, scrub
from seatflow.ops.devstack.plan import Plan
from seatflow.ops.devstack.probes import database_reachable, run_async
from seatflow.ops.devstack.records import (
    Paths,
    live_process,
    read_json,
    relative,
    stop_process,
    write_json,
)

# pgserver asks platformdirs for a runtime dir; the fallback to /tmp is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def up_postgres(paths: Paths, plan: Plan, timeout: float) -> str:
    """The database URL to use: the external one if reachable, else the embedded server's."""
    if plan.external_db:
        try:
            run_async(database_reachable(plan.external_db, timeout=min(timeout, 15)))
        except Exception as exc:  # noqa: BLE001 - reported with the password masked
            raise DevStackError(f"DATABASE_URL {mask_password(plan.external_db)} is not "
                                f"reachable: {scrub(exc, plan.external_db)}") from None
        paths.record("postgres").unlink(missing_ok=True)
        return plan.external_db
    from pgserver.postgres_server import get_server
    from pgserver.utils import PostmasterInfo

    from seatflow.storage.embedded import start_embedded_postgres

    before = PostmasterInfo.read_from_pgdata(paths.pg_data) if paths.pg_data.exists() else None
    was_running = before is not None and before.is_running()
    try:
        url = start_embedded_postgres(paths.pg_data, persistent=True)
        server = get_server(paths.pg_data, cleanup_mode=None)
        # pgserver caches one handle per data dir and process; after `down` in
        # the same process that handle still believes the server runs.
        with server._lock:
            server.ensure_postgres_running()
        url = server.get_uri()
    except Exception as exc:
        raise DevStackError(f"PostgreSQL did not start: {exc}; see "
                            f"{relative(paths.pg_data / 'log', paths)}") from exc
    info = PostmasterInfo.read_from_pgdata(paths.pg_data)
    assert info is not None and info.process is not None
    existing = read_json(paths.record("postgres"))
    adopted = was_running and live_process(existing) is None
    if live_process(existing) is None:
        # var/pg belongs to the stack: a server found running there (say, from
        # `seatflow db upgrade`) is adopted, so `down` stops it too.
        write_json(paths.record("postgres"), {
            "name": "postgres", "pid": info.pid, "create_time": info.process.create_time(),
            "data_dir": str(paths.pg_data), "url": url, "log": str(paths.pg_data / "log"),
            "adopted": adopted, "started_at": datetime.now(UTC).isoformat(),
        })
    return url


def postgres_component(paths: Paths, settings: Settings) -> Component:
    if settings.database_url:
        return Component("postgres", "external", managed=False,
                         address=mask_password(settings.database_url),
                         detail="DATABASE_URL is set; nothing started")
    rec = read_json(paths.record("postgres"))
    proc = live_process(rec)
    log = relative(paths.pg_data / "log", paths)
    if proc is not None and rec is not None:
        detail = "adopted (was already running)" if rec.get("adopted") else ""
        return Component("postgres", "running", managed=True, pid=proc.pid,
                         address=rec.get("url"), log=log, detail=detail)
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(paths.pg_data) if paths.pg_data.exists() else None
    if info is not None and info.is_running():
        return Component("postgres", "running", managed=False, pid=info.pid,
                         address=info.get_uri(), log=log,
                         detail="not started by dev up; `dev up` adopts it")
    return Component("postgres", "stopped", managed=False, log=log)


def stop_postgres(paths: Paths, rec: Mapping[str, Any], timeout: float) -> bool:
    proc = live_process(rec)
    if proc is None:
        return False
    from pgserver import pg_ctl  # type: ignore[attr-defined]

    # pgserver runs PostgreSQL as the `pgserver` user when we are root.
    user = "pgserver" if os.geteuid() == 0 else None
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        pg_ctl(["-w", "-m", "fast", "-t", str(int(timeout)), "stop"],
               pgdata=Path(rec.get("data_dir", paths.pg_data)), user=user,
               timeout=timeout + 5)
    if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
        stop_process(rec, timeout)  # pg_ctl failed: SIGTERM is a smart shutdown
    return True
