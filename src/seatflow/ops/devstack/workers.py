"""The worker processes (`python -m worker`, one per core by default): started
by `up` each with its own metrics port, restarted when asked for an environment
they lack, waited for until they poll the task queue."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from seatflow.config import Settings
from seatflow.ops.devstack.plan import Plan
from seatflow.ops.devstack.probes import pollers, run_async
from seatflow.ops.devstack.records import (
    Paths,
    live_process,
    read_json,
    spawn,
    stop_process,
    write_json,
)

WORKER_MODULE = "worker"


def default_workers() -> int:
    """One worker process per core: a worker is one Python process (one core
    at most), so a single one leaves the other cores idle under load."""
    return max(1, os.cpu_count() or 1)


def worker_records(paths: Paths) -> list[dict[str, Any]]:
    records = [read_json(p) for p in paths.run_dir.glob("worker-*.json")]
    found = [r for r in records if r and isinstance(r.get("index"), int)]
    return sorted(found, key=lambda r: int(r["index"]))


def up_workers(paths: Paths, plan: Plan, env: Mapping[str, str], count: int,
               metrics_port: int | None, overrides: Mapping[str, str]) -> list[dict[str, Any]]:
    started = []
    base_metrics = metrics_port or metrics_port_base(plan.settings)
    for old in worker_records(paths):
        # Forget workers beyond `count` that already exited; running ones stay.
        if int(old["index"]) > count and live_process(old) is None:
            paths.record(str(old["name"])).unlink(missing_ok=True)
    for index in range(1, count + 1):
        rec = read_json(paths.record(f"worker-{index}"))
        if live_process(rec) is not None:
            had = (rec or {}).get("env") or {}
            if all(had.get(k) == v for k, v in overrides.items()):
                continue
            # Asked for an environment this worker lacks (the demo's V3 flag): restart it.
            stop_process(rec or {})
        started.append(start_worker(paths, env, index, base_metrics, overrides))
    return started


def start_worker(paths: Paths, env: Mapping[str, str], index: int, base_metrics: int,
                 overrides: Mapping[str, str]) -> dict[str, Any]:
    host = _metrics_host()
    own = dict(overrides)
    # Every worker serves its own Prometheus endpoint, so each needs a port.
    own.setdefault("SEATFLOW_METRICS_ADDRESS", f"{host}:{base_metrics + index - 1}")
    child_env = {**env, **own}
    return spawn(f"worker-{index}", [sys.executable, "-m", WORKER_MODULE], paths, child_env,
                 env_overrides=own, extra={"index": index})


def metrics_port_base(settings: Settings) -> int:
    _, _, port = settings.metrics_address.rpartition(":")
    return int(port) if port.isdigit() else 9464


def _metrics_host() -> str:
    host, _, _ = os.environ.get("SEATFLOW_METRICS_ADDRESS", "127.0.0.1:9464").rpartition(":")
    return host or "127.0.0.1"


def wait_for_workers(paths: Paths, address: str, namespace: str, task_queue: str,
                     started: list[dict[str, Any]], timeout: float) -> None:
    """Wait until each new worker polls the task queue, or exits, or `timeout` passes."""
    pending = {int(r["pid"]): r for r in started}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid, rec in list(pending.items()):
            if live_process(rec) is None:
                del pending[pid]
        if not pending:
            break
        try:
            identities = run_async(pollers(address, namespace, task_queue))
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            identities = set()
        for pid in list(pending):
            if any(i.startswith(f"{pid}@") for i in identities):
                rec = pending.pop(pid)
                write_json(paths.record(rec["name"]), {**rec, "polling": True})
        time.sleep(0.25)
