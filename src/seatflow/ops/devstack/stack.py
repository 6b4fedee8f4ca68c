"""The stack as a whole: `up` (each component in order, migrations between
the database and Temporal), `status`, `down` (in reverse order, workers
first) and `restart_workers`, one at a time per project under the stack lock."""

from __future__ import annotations

from collections.abc import Mapping

from seatflow.ops.devstack.api import API, api_component, up_api
from seatflow.ops.devstack.model import DevStackError, StackStatus, mask_password, scrub
from seatflow.ops.devstack.plan import child_env, make_plan, stack_settings
from seatflow.ops.devstack.postgres import postgres_component, stop_postgres, up_postgres
from seatflow.ops.devstack.records import (
    STOP_TIMEOUT_SECONDS,
    live_process,
    process_component,
    read_json,
    stack_lock,
    stack_paths,
    stop_process,
    write_json,
)
from seatflow.ops.devstack.relay import INTAKE_RELAY, relay_component, up_intake_relay
from seatflow.ops.devstack.temporal import temporal_component, up_temporal
from seatflow.ops.devstack.workers import (
    default_workers,
    metrics_port_base,
    start_worker,
    up_workers,
    wait_for_workers,
    worker_records,
)


def up(workers: int | None = None, *, temporal_port: int | None = None, ui_port: int | None = None,
       metrics_port: int | None = None, worker_env: Mapping[str, str] | None = None,
       timeout: float = 60.0, worker_ready_timeout: float = 20.0,
       api_port: int | None = None) -> StackStatus:
    """Start whatever of the stack is not running yet; returns its status.

    Idempotent: running pieces are detected and kept. `workers=None` starts
    one per core (`default_workers`), `workers=0` none (tests). `worker_env`
    adds variables to the workers' environment; a running worker started
    without them is restarted. A worker that exits at once is reported as
    exited, not raised.
    """
    if workers is None:
        workers = default_workers()
    if workers < 0:
        raise DevStackError("workers must be >= 0")
    paths = stack_paths()
    for d in (paths.var, paths.log_dir, paths.run_dir):
        d.mkdir(parents=True, exist_ok=True)
    with stack_lock(paths):
        plan = make_plan(paths, temporal_port, ui_port)
        database_url = up_postgres(paths, plan, timeout)
        from seatflow.storage.db import upgrade

        try:
            upgrade(database_url)
        except Exception as exc:  # noqa: BLE001 - reported with the password masked
            raise DevStackError(f"migrations failed on {mask_password(database_url)}: "
                                f"{scrub(exc, database_url)}") from None
        ui_url = up_temporal(paths, plan, timeout)
        stack = {
            "database_url": None if plan.external_db else database_url,
            "external_database_url": mask_password(plan.external_db),
            "temporal_address": plan.temporal_address,
            "external_temporal": plan.external_temporal,
            "ui_url": ui_url,
            "namespace": plan.settings.temporal_namespace,
            "task_queue": plan.settings.task_queue,
            "metrics_port": metrics_port,
        }
        write_json(paths.stack_file, stack)
        env = child_env(paths, plan, database_url)
        started = up_workers(paths, plan, env, workers, metrics_port, worker_env or {})
        up_intake_relay(paths, env, worker_env or {})
        up_api(paths, plan, env, api_port)
        wait_for_workers(paths, plan.temporal_address, plan.settings.temporal_namespace,
                         plan.settings.task_queue, started, worker_ready_timeout)
    return status()


def status() -> StackStatus:
    """What runs and where, from var/run/ and live process checks (starts nothing)."""
    paths = stack_paths()
    stack = read_json(paths.stack_file) or {}
    settings = stack_settings(paths)
    components = [postgres_component(paths, settings), temporal_component(paths, stack)]
    for rec in worker_records(paths):
        components.append(process_component(paths, rec))
    relay = relay_component(paths)
    if relay is not None:
        components.append(relay)
    api, api_url = api_component(paths)
    if api is not None:
        components.append(api)
    pg = read_json(paths.record("postgres"))
    database_url = settings.database_url or (pg or {}).get("url") or stack.get("database_url")
    temporal = read_json(paths.record("temporal"))
    return StackStatus(
        home=paths.home,
        database_url=database_url,
        temporal_address=stack.get("temporal_address") or (temporal or {}).get("address"),
        namespace=stack.get("namespace", settings.temporal_namespace),
        task_queue=stack.get("task_queue", settings.task_queue),
        ui_url=(temporal or {}).get("ui_url") if live_process(temporal) else None,
        components=components,
        api_url=api_url,
    )


def down(timeout: float = STOP_TIMEOUT_SECONDS) -> list[str]:
    """Stop what `dev up` started, workers first; returns the names stopped."""
    paths = stack_paths()
    if not paths.run_dir.exists():
        return []
    stopped: list[str] = []
    with stack_lock(paths):
        procs = worker_records(paths)
        relay = read_json(paths.record(INTAKE_RELAY))
        api = read_json(paths.record(API))
        for rec in [*([api] if api else []), *([relay] if relay else []), *procs]:
            if stop_process(rec, timeout):
                stopped.append(str(rec["name"]))
            paths.record(str(rec["name"])).unlink(missing_ok=True)
        temporal = read_json(paths.record("temporal"))
        if temporal:
            if stop_process(temporal, timeout):
                stopped.append("temporal")
            paths.record("temporal").unlink(missing_ok=True)
        pg = read_json(paths.record("postgres"))
        if pg:
            if stop_postgres(paths, pg, timeout):
                stopped.append("postgres")
            paths.record("postgres").unlink(missing_ok=True)
        paths.stack_file.unlink(missing_ok=True)
    return stopped


def restart_workers(workers: int | None = None, *, worker_env: Mapping[str, str] | None = None,
                    timeout: float = STOP_TIMEOUT_SECONDS,
                    worker_ready_timeout: float = 20.0) -> StackStatus:
    """Kill the workers and start them again (fault tests, flag changes).

    `workers=None` restarts as many as were recorded (at least one). Each keeps
    the environment overrides it had unless `worker_env` replaces them.
    """
    paths = stack_paths()
    with stack_lock(paths):
        stack = read_json(paths.stack_file)
        if not stack:
            raise DevStackError("the stack is not up; run `seatflow dev up` first")
        records = worker_records(paths)
        count = workers if workers is not None else max(len(records), 1)
        previous = {int(r["index"]): dict(r.get("env") or {}) for r in records}
        for rec in records:
            stop_process(rec, timeout)
            paths.record(str(rec["name"])).unlink(missing_ok=True)
        plan = make_plan(paths, None, None)
        database_url = stack_settings(paths).database_url or str(stack.get("database_url"))
        env = child_env(paths, plan, database_url)
        env["TEMPORAL_ADDRESS"] = str(stack["temporal_address"])
        base_metrics = stack.get("metrics_port") or metrics_port_base(plan.settings)
        started = []
        for index in range(1, count + 1):
            overrides = dict(worker_env) if worker_env is not None else previous.get(
                index, previous.get(1, {}))
            overrides.pop("SEATFLOW_METRICS_ADDRESS", None)
            started.append(start_worker(paths, env, index, int(base_metrics), overrides))
        wait_for_workers(paths, str(stack["temporal_address"]), str(stack["namespace"]),
                         str(stack["task_queue"]), started, worker_ready_timeout)
    return status()
