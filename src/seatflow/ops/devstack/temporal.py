"""The Temporal dev server in the stack (`temporal server start-dev`, state in
var/temporal.db, Web UI): started by `up` with the search attributes of
`seatflow.domain.search_attributes` registered, reported by `status`; or an
external server (a non-loopback `TEMPORAL_ADDRESS`, or anything Temporal
already listening on the port), used and never owned."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seatflow.domain.search_attributes import REGISTRATION
from seatflow.ops.devstack.model import Component, DevStackError
from seatflow.ops.devstack.plan import Plan
from seatflow.ops.devstack.probes import ensure_search_attributes, port_open, run_async
from seatflow.ops.devstack.records import (
    Paths,
    binary,
    live_process,
    log_tail,
    read_json,
    relative,
    spawn,
)

SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")


def up_temporal(paths: Paths, plan: Plan, timeout: float) -> str | None:
    """Start the dev server unless one runs; returns its Web UI URL (None if not ours)."""
    ns = plan.settings.temporal_namespace
    address = plan.temporal_address
    record = read_json(paths.record("temporal"))
    if plan.external_temporal or live_process(record) is not None:
        ui = None if plan.external_temporal else (record or {}).get("ui_url")
        _ensure_attributes_or_fail(address, ns, timeout, paths)
        return ui
    paths.record("temporal").unlink(missing_ok=True)
    if port_open("localhost", plan.temporal_port):
        # Something else listens there: use it if it is Temporal, never own it.
        try:
            run_async(ensure_search_attributes(address, ns, 5))
        except Exception as exc:
            raise DevStackError(
                f"port {plan.temporal_port} is in use by something that is not a Temporal "
                f"server ({exc}); free it or choose another with --port") from exc
        return None
    if port_open("localhost", plan.ui_port):
        raise DevStackError(f"the Temporal UI port {plan.ui_port} is in use; "
                            f"choose another with --ui-port")
    cmd = [binary("temporal"), "server", "start-dev",
           "--db-filename", str(paths.temporal_db),
           # Write-ahead log, fsync at checkpoints only: a dev store, where the
           # default (fsync on every commit) made every workflow task wait on
           # the disk and put seconds before a booking's first step.
           *SQLITE_PRAGMAS,
           "--port", str(plan.temporal_port), "--ui-port", str(plan.ui_port),
           "--log-level", "warn"]
    for name, kind in REGISTRATION.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    if ns != "default":
        cmd += ["--namespace", ns]
    ui_url = f"http://localhost:{plan.ui_port}"
    rec = spawn("temporal", cmd, paths, os.environ, env_overrides={},
                extra={"address": address, "ui_url": ui_url, "port": plan.temporal_port,
                       "ui_port": plan.ui_port, "db": str(paths.temporal_db)})
    deadline = time.monotonic() + timeout
    while not port_open("localhost", plan.temporal_port):
        if live_process(rec) is None:
            raise DevStackError("the Temporal dev server exited during start-up; see "
                                f"{relative(paths.log('temporal'), paths)}:\n"
                                f"{log_tail(paths.log('temporal'))}")
        if time.monotonic() > deadline:
            raise DevStackError(f"the Temporal dev server did not open port "
                                f"{plan.temporal_port} within {timeout:.0f} s; see "
                                f"{relative(paths.log('temporal'), paths)}")
        time.sleep(0.1)
    _ensure_attributes_or_fail(address, ns, max(deadline - time.monotonic(), 10), paths)
    return ui_url


def _ensure_attributes_or_fail(address: str, ns: str, timeout: float, paths: Paths) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            run_async(ensure_search_attributes(address, ns, 5))
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"Temporal at {address} is not usable (namespace {ns!r}): {exc}; see "
                    f"{relative(paths.log('temporal'), paths)}") from exc
            time.sleep(0.25)


def temporal_component(paths: Paths, stack: Mapping[str, Any]) -> Component:
    rec = read_json(paths.record("temporal"))
    proc = live_process(rec)
    log = relative(paths.log("temporal"), paths)
    if proc is not None and rec is not None:
        return Component("temporal", "running", managed=True, pid=proc.pid,
                         address=rec.get("address"), log=log,
                         detail=f"UI {rec.get('ui_url')}, state in "
                                f"{relative(Path(rec.get('db', paths.temporal_db)), paths)}")
    address = stack.get("temporal_address")
    if address and (stack.get("external_temporal") or not rec):
        host, _, port = str(address).rpartition(":")
        reachable = port.isdigit() and port_open(host.strip("[]") or "localhost", int(port))
        return Component("temporal", "external" if reachable else "stopped", managed=False,
                         address=address, detail="not started by dev up" +
                         ("" if reachable else "; not reachable"))
    return Component("temporal", "stopped", managed=False, log=log)
