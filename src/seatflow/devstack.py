"""The embedded local stack behind `seatflow dev up | down | status`.

PostgreSQL (pgserver, data in var/pg), the Temporal dev server (state in
var/temporal.db, Web UI), migrations, and worker processes, all started in
the background in their own sessions so they outlive the command that started
them. Logs go to var/log/, pid records to var/run/. A pid record holds the
process start time, so `down` never signals an unrelated process that reused
the pid. `DATABASE_URL`, and a non-loopback `TEMPORAL_ADDRESS`, point at
external servers: then nothing is started for them.

docs/devstack.md is the user-facing description.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]  # shipped with pgserver, which we need anyway

from seatflow.config import Settings, load_settings, project_root
from seatflow.domain.search_attributes import REGISTRATION

T = TypeVar("T")

# pgserver asks platformdirs for a runtime dir; the fallback to /tmp is fine.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

DEFAULT_TEMPORAL_PORT = 7233
WORKER_MODULE = "worker"
INTAKE_RELAY_MODULE = "seatflow.intake.relay"
INTAKE_RELAY = "intake-relay"
API = "api"
API_MODULE = "seatflow.api.server"
# Default API port: 8000 next to Temporal's default 7233 (a stack on another
# Temporal port gets its own API port).
API_PORT_OFFSET = 767
STOP_TIMEOUT_SECONDS = 10.0
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class DevStackError(RuntimeError):
    """A piece of the stack could not be started or stopped; says where to look."""


@dataclass(frozen=True)
class Component:
    """One piece of the stack as `status` sees it."""

    name: str  # postgres, temporal, worker-1..N, intake-relay
    state: str  # running | exited | stopped | external
    managed: bool  # started (or adopted) by `dev up`, so `dev down` stops it
    pid: int | None = None
    address: str | None = None
    log: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class StackStatus:
    home: Path
    database_url: str | None
    temporal_address: str | None
    namespace: str
    task_queue: str
    ui_url: str | None
    components: list[Component] = field(default_factory=list)
    api_url: str | None = None

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def workers(self) -> list[Component]:
        return [c for c in self.components if c.name.startswith("worker-")]

    @property
    def running(self) -> bool:
        """Database and Temporal are usable and every recorded worker runs."""
        core = [self.component("postgres"), self.component("temporal")]
        if any(c is None or c.state not in ("running", "external") for c in core):
            return False
        return all(w.state == "running" for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "running": self.running,
            "database_url": mask_password(self.database_url),
            "temporal_address": self.temporal_address,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
            "ui_url": self.ui_url,
            "api_url": self.api_url,
            "components": [asdict(c) for c in self.components],
        }


# --- paths and records -------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def var(self) -> Path:
        return self.home / "var"

    @property
    def pg_data(self) -> Path:
        return self.var / "pg"

    @property
    def temporal_db(self) -> Path:
        return self.var / "temporal.db"

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def record(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    @property
    def stack_file(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def api_tokens(self) -> Path:
        return self.var / "api-tokens.json"


def _paths() -> Paths:
    return Paths(project_root())


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def _stack_lock(paths: Paths) -> Iterator[None]:
    """One `up`/`down`/`restart` at a time per project."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.run_dir / "devstack.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Children started by this Python process: polled so they never linger as zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _live_process(record: Mapping[str, Any] | None) -> psutil.Process | None:
    """The recorded process if it still runs and really is the one recorded."""
    if not record or not isinstance(record.get("pid"), int):
        return None
    pid = record["pid"]
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(record.get("create_time", 0))) > 0.5:
            return None  # the pid was reused by something else
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _exit_detail(record: Mapping[str, Any], paths: Paths) -> str:
    code = None
    child = _children.get(int(record.get("pid", 0)))
    if child is not None:
        code = child.poll()
    log = _relative(Path(record.get("log", paths.log(str(record.get("name"))))), paths)
    suffix = f" with code {code}" if code is not None else ""
    return f"exited{suffix}, see {log}"


def _relative(path: Path, paths: Paths) -> str:
    try:
        return str(path.relative_to(paths.home))
    except ValueError:
        return str(path)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join("    " + line for line in text[-lines:])


def _binary(name: str) -> str:
    """A binary shipped by a pip package into this venv's bin/, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise DevStackError(f"`{name}` not found next to {sys.executable} or on PATH; "
                            f"run `make install`")
    return found


def _spawn(name: str, cmd: list[str], paths: Paths, env: Mapping[str, str],
           *, env_overrides: Mapping[str, str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Start `cmd` in its own session, output appended to var/log/{name}.log."""
    log_path = paths.log(name)
    with open(log_path, "ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} seatflow dev: starting {name}: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=paths.home, env=dict(env), start_new_session=True,
        )
    _children[proc.pid] = proc
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = 0.0
    record = {
        "name": name, "pid": proc.pid, "create_time": create_time, "cmdline": cmd,
        "log": str(log_path), "started_at": datetime.now(UTC).isoformat(),
        "env": dict(env_overrides), **extra,
    }
    _write_json(paths.record(name), record)
    return record


def _stop_process(record: Mapping[str, Any], timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the recorded process (and its session's group), SIGKILL after `timeout`."""
    proc = _live_process(record)
    if proc is None:
        child = _children.pop(int(record.get("pid", 0)), None)
        if child is not None:
            child.poll()
        return False
    group = proc.pid if _pgid(proc.pid) == proc.pid else None
    _signal(proc.pid, group, signal.SIGTERM)
    _, alive = psutil.wait_procs([proc], timeout=timeout)
    if alive:
        _signal(proc.pid, group, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
    if group is not None:  # leftovers of the same session (helpers the process forked)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    child = _children.pop(proc.pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    return True


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal(pid: int, group: int | None, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)


# --- async helpers -----------------------------------------------------------


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already has a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def _connect_temporal(address: str, namespace: str, timeout: float) -> Any:
    from temporalio.client import Client

    return await asyncio.wait_for(Client.connect(address, namespace=namespace), timeout)


async def _ensure_search_attributes(address: str, namespace: str, timeout: float) -> list[str]:
    """Register any missing search attribute; returns the names it added.

    `start-dev --search-attribute` only registers on a fresh database, so a
    persisted var/temporal.db from an older version needs this.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    client = await _connect_temporal(address, namespace, timeout)
    ops = client.operator_service
    listed = await ops.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in REGISTRATION.items()
        if name not in listed.custom_attributes
    }
    if missing:
        try:
            await ops.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


async def _pollers(address: str, namespace: str, task_queue: str) -> set[str]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    client = await _connect_temporal(address, namespace, 5)
    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    ))
    return {p.identity for p in resp.pollers}


async def _database_reachable(url: str, timeout: float) -> None:
    import asyncpg  # type: ignore[import-untyped]

    from seatflow.storage.db import libpq_url

    conn = await asyncpg.connect(libpq_url(url), timeout=timeout)
    await conn.close()


def mask_password(url: str | None) -> str | None:
    from seatflow.redact import mask_url

    return mask_url(url)


def _scrub(exc: BaseException, url: str | None) -> str:
    """An error's text without the database password (drivers may quote the URL)."""
    from seatflow.redact import redact_secrets, url_password

    return redact_secrets(str(exc), (url_password(url),))


# --- configuration -----------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where each piece lives, resolved from options, environment and .env."""

    settings: Settings
    external_db: str | None
    temporal_host: str
    temporal_port: int
    ui_port: int
    external_temporal: bool

    @property
    def temporal_address(self) -> str:
        if self.external_temporal:
            return self.settings.temporal_address
        return f"localhost:{self.temporal_port}"


def _settings(paths: Paths) -> Settings:
    return load_settings(_env_file=paths.home / ".env")


def _plan(paths: Paths, temporal_port: int | None, ui_port: int | None) -> _Plan:
    settings = _settings(paths)
    host, _, port_text = settings.temporal_address.rpartition(":")
    address_set = "temporal_address" in settings.model_fields_set
    external = address_set and host not in LOOPBACK_HOSTS
    port = temporal_port or _env_int("SEATFLOW_DEV_TEMPORAL_PORT")
    if port is None:
        port = int(port_text) if address_set and not external and port_text.isdigit() \
            else DEFAULT_TEMPORAL_PORT
    ui = ui_port or _env_int("SEATFLOW_DEV_UI_PORT") or port + 1000
    return _Plan(settings=settings, external_db=settings.database_url,
                 temporal_host=host or "localhost", temporal_port=port, ui_port=ui,
                 external_temporal=external)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DevStackError(f"{name}={value!r} is not a port number") from None


# --- up ----------------------------------------------------------------------


SQLITE_PRAGMAS = ("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")


def default_workers() -> int:
    """One worker process per core: a worker is one Python process (one core
    at most), so a single one leaves the other cores idle under load."""
    return max(1, os.cpu_count() or 1)


def up(workers: int | None = None, *, temporal_port: int | None = None, ui_port: int | None = None,
       metrics_port: int | None = None, worker_env: Mapping[str, str] | None = None,
       timeout: float = 60.0, worker_ready_timeout: float = 20.0,
       api_port: int | None = None) -> StackStatus:
    """Start whatever of the stack is not running yet; returns its status.

    Idempotent: running pieces are detected and kept. `workers=None` starts
    one per core (`default_workers`), `workers=0` none (tests). `worker_env` adds variables to the workers' environment; a running
    worker started without them is restarted. A worker that exits at once is
    reported as exited, not raised.
    """
    if workers is None:
        workers = default_workers()
    if workers < 0:
        raise DevStackError("workers must be >= 0")
    paths = _paths()
    for d in (paths.var, paths.log_dir, paths.run_dir):
        d.mkdir(parents=True, exist_ok=True)
    with _stack_lock(paths):
        plan = _plan(paths, temporal_port, ui_port)
        database_url = _up_postgres(paths, plan, timeout)
        from seatflow.storage.db import upgrade

        try:
            upgrade(database_url)
        except Exception as exc:  # noqa: BLE001 - reported with the password masked
            raise DevStackError(f"migrations failed on {mask_password(database_url)}: "
                                f"{_scrub(exc, database_url)}") from None
        ui_url = _up_temporal(paths, plan, timeout)
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
        _write_json(paths.stack_file, stack)
        env = _child_env(paths, plan, database_url)
        started = _up_workers(paths, plan, env, workers, metrics_port, worker_env or {})
        _up_intake_relay(paths, env, worker_env or {})
        _up_api(paths, plan, env, api_port)
        _wait_for_workers(paths, plan.temporal_address, plan.settings.temporal_namespace,
                          plan.settings.task_queue, started, worker_ready_timeout)
    return status()


def _up_postgres(paths: Paths, plan: _Plan, timeout: float) -> str:
    if plan.external_db:
        try:
            _run_async(_database_reachable(plan.external_db, timeout=min(timeout, 15)))
        except Exception as exc:  # noqa: BLE001 - reported with the password masked
            raise DevStackError(f"DATABASE_URL {mask_password(plan.external_db)} is not "
                                f"reachable: {_scrub(exc, plan.external_db)}") from None
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
                            f"{_relative(paths.pg_data / 'log', paths)}") from exc
    info = PostmasterInfo.read_from_pgdata(paths.pg_data)
    assert info is not None and info.process is not None
    existing = _read_json(paths.record("postgres"))
    adopted = was_running and _live_process(existing) is None
    if _live_process(existing) is None:
        # var/pg belongs to the stack: a server found running there (say, from
        # `seatflow db upgrade`) is adopted, so `down` stops it too.
        _write_json(paths.record("postgres"), {
            "name": "postgres", "pid": info.pid, "create_time": info.process.create_time(),
            "data_dir": str(paths.pg_data), "url": url, "log": str(paths.pg_data / "log"),
            "adopted": adopted, "started_at": datetime.now(UTC).isoformat(),
        })
    return url


def _up_temporal(paths: Paths, plan: _Plan, timeout: float) -> str | None:
    ns = plan.settings.temporal_namespace
    address = plan.temporal_address
    record = _read_json(paths.record("temporal"))
    if plan.external_temporal or _live_process(record) is not None:
        ui = None if plan.external_temporal else (record or {}).get("ui_url")
        _ensure_attributes_or_fail(address, ns, timeout, paths)
        return ui
    paths.record("temporal").unlink(missing_ok=True)
    if _port_open("localhost", plan.temporal_port):
        # Something else listens there: use it if it is Temporal, never own it.
        try:
            _run_async(_ensure_search_attributes(address, ns, 5))
        except Exception as exc:
            raise DevStackError(
                f"port {plan.temporal_port} is in use by something that is not a Temporal "
                f"server ({exc}); free it or choose another with --port") from exc
        return None
    if _port_open("localhost", plan.ui_port):
        raise DevStackError(f"the Temporal UI port {plan.ui_port} is in use; "
                            f"choose another with --ui-port")
    cmd = [_binary("temporal"), "server", "start-dev",
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
    rec = _spawn("temporal", cmd, paths, os.environ, env_overrides={},
                 extra={"address": address, "ui_url": ui_url, "port": plan.temporal_port,
                        "ui_port": plan.ui_port, "db": str(paths.temporal_db)})
    deadline = time.monotonic() + timeout
    while not _port_open("localhost", plan.temporal_port):
        if _live_process(rec) is None:
            raise DevStackError("the Temporal dev server exited during start-up; see "
                                f"{_relative(paths.log('temporal'), paths)}:\n"
                                f"{_log_tail(paths.log('temporal'))}")
        if time.monotonic() > deadline:
            raise DevStackError(f"the Temporal dev server did not open port "
                                f"{plan.temporal_port} within {timeout:.0f} s; see "
                                f"{_relative(paths.log('temporal'), paths)}")
        time.sleep(0.1)
    _ensure_attributes_or_fail(address, ns, max(deadline - time.monotonic(), 10), paths)
    return ui_url


def _ensure_attributes_or_fail(address: str, ns: str, timeout: float, paths: Paths) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _run_async(_ensure_search_attributes(address, ns, 5))
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"Temporal at {address} is not usable (namespace {ns!r}): {exc}; see "
                    f"{_relative(paths.log('temporal'), paths)}") from exc
            time.sleep(0.25)


def _child_env(paths: Paths, plan: _Plan, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": plan.temporal_address,
        "TEMPORAL_NAMESPACE": plan.settings.temporal_namespace,
        "SEATFLOW_TASK_QUEUE": plan.settings.task_queue,
        "SEATFLOW_HOME": str(paths.home),
        "PYTHONUNBUFFERED": "1",
    })
    # People read the dev stack's logs: console lines unless JSON was asked for.
    env.setdefault("SEATFLOW_LOG_FORMAT", "console")
    return env


def _worker_records(paths: Paths) -> list[dict[str, Any]]:
    records = [_read_json(p) for p in paths.run_dir.glob("worker-*.json")]
    found = [r for r in records if r and isinstance(r.get("index"), int)]
    return sorted(found, key=lambda r: int(r["index"]))


def _up_workers(paths: Paths, plan: _Plan, env: Mapping[str, str], count: int,
                metrics_port: int | None, overrides: Mapping[str, str]) -> list[dict[str, Any]]:
    started = []
    base_metrics = metrics_port or _metrics_port(plan.settings)
    for old in _worker_records(paths):
        # Forget workers beyond `count` that already exited; running ones stay.
        if int(old["index"]) > count and _live_process(old) is None:
            paths.record(str(old["name"])).unlink(missing_ok=True)
    for index in range(1, count + 1):
        rec = _read_json(paths.record(f"worker-{index}"))
        if _live_process(rec) is not None:
            had = (rec or {}).get("env") or {}
            if all(had.get(k) == v for k, v in overrides.items()):
                continue
            # Asked for an environment this worker lacks (the demo's V3 flag): restart it.
            _stop_process(rec or {})
        started.append(_start_worker(paths, env, index, base_metrics, overrides))
    return started


def _start_worker(paths: Paths, env: Mapping[str, str], index: int, base_metrics: int,
                  overrides: Mapping[str, str]) -> dict[str, Any]:
    host = _metrics_host()
    own = dict(overrides)
    # Every worker serves its own Prometheus endpoint, so each needs a port.
    own.setdefault("SEATFLOW_METRICS_ADDRESS", f"{host}:{base_metrics + index - 1}")
    child_env = {**env, **own}
    return _spawn(f"worker-{index}", [sys.executable, "-m", WORKER_MODULE], paths, child_env,
                  env_overrides=own, extra={"index": index})


def _metrics_port(settings: Settings) -> int:
    _, _, port = settings.metrics_address.rpartition(":")
    return int(port) if port.isdigit() else 9464


def _metrics_host() -> str:
    host, _, _ = os.environ.get("SEATFLOW_METRICS_ADDRESS", "127.0.0.1:9464").rpartition(":")
    return host or "127.0.0.1"


def _up_intake_relay(paths: Paths, env: Mapping[str, str], overrides: Mapping[str, str]) -> None:
    """Hook for the intake relay (another issue): started only once its module exists."""
    if importlib.util.find_spec(INTAKE_RELAY_MODULE) is None:
        return
    if _live_process(_read_json(paths.record(INTAKE_RELAY))) is not None:
        return
    _spawn(INTAKE_RELAY, [sys.executable, "-m", INTAKE_RELAY_MODULE], paths,
           {**env, **overrides}, env_overrides=dict(overrides), extra={})


def _dev_api_tokens(paths: Paths) -> str:
    """SEATFLOW_API_TOKENS when set; otherwise a host and an operator token for
    every restaurant, made once and kept in var/api-tokens.json (mode 0600)."""
    configured = os.environ.get("SEATFLOW_API_TOKENS") or _settings(paths).api_tokens
    if configured:
        return configured
    if not paths.api_tokens.exists():
        import secrets

        tokens = [
            {"name": "dev-host", "token": secrets.token_urlsafe(24), "role": "host",
             "restaurants": ["*"]},
            {"name": "dev-operator", "token": secrets.token_urlsafe(24), "role": "operator",
             "restaurants": ["*"]},
        ]
        fd = os.open(paths.api_tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(tokens, out, indent=2)
    return paths.api_tokens.read_text()


def _up_api(paths: Paths, plan: _Plan, env: Mapping[str, str], api_port: int | None) -> None:
    """The HTTP API (`python -m seatflow.api.server`) on 127.0.0.1."""
    if _live_process(_read_json(paths.record(API))) is not None:
        return
    port = api_port or _env_int("SEATFLOW_DEV_API_PORT") or plan.temporal_port + API_PORT_OFFSET
    if _port_open("127.0.0.1", port):
        raise DevStackError(f"the API port {port} is in use; choose another with --api-port "
                            "or SEATFLOW_DEV_API_PORT")
    own = {"SEATFLOW_API_ADDRESS": f"127.0.0.1:{port}"}
    # The tokens reach the process through its environment only: never the record.
    child_env = {**env, **own, "SEATFLOW_API_TOKENS": _dev_api_tokens(paths)}
    _spawn(API, [sys.executable, "-m", API_MODULE], paths, child_env, env_overrides=own,
           extra={"url": f"http://127.0.0.1:{port}"})


def _wait_for_workers(paths: Paths, address: str, namespace: str, task_queue: str,
                      started: list[dict[str, Any]], timeout: float) -> None:
    """Wait until each new worker polls the task queue, or exits, or `timeout` passes."""
    pending = {int(r["pid"]): r for r in started}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid, rec in list(pending.items()):
            if _live_process(rec) is None:
                del pending[pid]
        if not pending:
            break
        try:
            identities = _run_async(_pollers(address, namespace, task_queue))
        except Exception:  # noqa: BLE001 - keep waiting until the deadline
            identities = set()
        for pid in list(pending):
            if any(i.startswith(f"{pid}@") for i in identities):
                rec = pending.pop(pid)
                _write_json(paths.record(rec["name"]), {**rec, "polling": True})
        time.sleep(0.25)


# --- status ------------------------------------------------------------------


def status() -> StackStatus:
    """What runs and where, from var/run/ and live process checks (starts nothing)."""
    paths = _paths()
    stack = _read_json(paths.stack_file) or {}
    settings = _settings(paths)
    components = [_postgres_component(paths, settings), _temporal_component(paths, stack)]
    for rec in _worker_records(paths):
        components.append(_process_component(paths, rec))
    relay = _read_json(paths.record(INTAKE_RELAY))
    if relay:
        components.append(_process_component(paths, relay))
    api = _read_json(paths.record(API))
    api_url = None
    if api:
        found = _process_component(paths, api)
        if found.state == "running":
            api_url = str(api.get("url"))
            tokens = ("tokens from SEATFLOW_API_TOKENS" if not paths.api_tokens.exists()
                      else f"tokens in {_relative(paths.api_tokens, paths)}")
            found = replace(found, address=api_url, detail=f"{api_url}, {tokens}")
        components.append(found)
    pg = _read_json(paths.record("postgres"))
    database_url = settings.database_url or (pg or {}).get("url") or stack.get("database_url")
    temporal = _read_json(paths.record("temporal"))
    return StackStatus(
        home=paths.home,
        database_url=database_url,
        temporal_address=stack.get("temporal_address") or (temporal or {}).get("address"),
        namespace=stack.get("namespace", settings.temporal_namespace),
        task_queue=stack.get("task_queue", settings.task_queue),
        ui_url=(temporal or {}).get("ui_url") if _live_process(temporal) else None,
        components=components,
        api_url=api_url,
    )


def _postgres_component(paths: Paths, settings: Settings) -> Component:
    if settings.database_url:
        return Component("postgres", "external", managed=False,
                         address=mask_password(settings.database_url),
                         detail="DATABASE_URL is set; nothing started")
    rec = _read_json(paths.record("postgres"))
    proc = _live_process(rec)
    log = _relative(paths.pg_data / "log", paths)
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


def _temporal_component(paths: Paths, stack: Mapping[str, Any]) -> Component:
    rec = _read_json(paths.record("temporal"))
    proc = _live_process(rec)
    log = _relative(paths.log("temporal"), paths)
    if proc is not None and rec is not None:
        return Component("temporal", "running", managed=True, pid=proc.pid,
                         address=rec.get("address"), log=log,
                         detail=f"UI {rec.get('ui_url')}, state in "
                                f"{_relative(Path(rec.get('db', paths.temporal_db)), paths)}")
    address = stack.get("temporal_address")
    if address and (stack.get("external_temporal") or not rec):
        host, _, port = str(address).rpartition(":")
        reachable = port.isdigit() and _port_open(host.strip("[]") or "localhost", int(port))
        return Component("temporal", "external" if reachable else "stopped", managed=False,
                         address=address, detail="not started by dev up" +
                         ("" if reachable else "; not reachable"))
    return Component("temporal", "stopped", managed=False, log=log)


def _process_component(paths: Paths, rec: Mapping[str, Any]) -> Component:
    proc = _live_process(rec)
    log = _relative(Path(rec.get("log", paths.log(str(rec["name"])))), paths)
    if proc is None:
        return Component(str(rec["name"]), "exited", managed=True, pid=rec.get("pid"),
                         log=log, detail=_exit_detail(rec, paths))
    detail = "polling the task queue" if rec.get("polling") else ""
    return Component(str(rec["name"]), "running", managed=True, pid=proc.pid, log=log,
                     detail=detail)


# --- down and restart --------------------------------------------------------


def down(timeout: float = STOP_TIMEOUT_SECONDS) -> list[str]:
    """Stop what `dev up` started, workers first; returns the names stopped."""
    paths = _paths()
    if not paths.run_dir.exists():
        return []
    stopped: list[str] = []
    with _stack_lock(paths):
        procs = _worker_records(paths)
        relay = _read_json(paths.record(INTAKE_RELAY))
        api = _read_json(paths.record(API))
        for rec in [*([api] if api else []), *([relay] if relay else []), *procs]:
            if _stop_process(rec, timeout):
                stopped.append(str(rec["name"]))
            paths.record(str(rec["name"])).unlink(missing_ok=True)
        temporal = _read_json(paths.record("temporal"))
        if temporal:
            if _stop_process(temporal, timeout):
                stopped.append("temporal")
            paths.record("temporal").unlink(missing_ok=True)
        pg = _read_json(paths.record("postgres"))
        if pg:
            if _stop_postgres(paths, pg, timeout):
                stopped.append("postgres")
            paths.record("postgres").unlink(missing_ok=True)
        paths.stack_file.unlink(missing_ok=True)
    return stopped


def _stop_postgres(paths: Paths, rec: Mapping[str, Any], timeout: float) -> bool:
    proc = _live_process(rec)
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
        _stop_process(rec, timeout)  # pg_ctl failed: SIGTERM is a smart shutdown
    return True


def restart_workers(workers: int | None = None, *, worker_env: Mapping[str, str] | None = None,
                    timeout: float = STOP_TIMEOUT_SECONDS,
                    worker_ready_timeout: float = 20.0) -> StackStatus:
    """Kill the workers and start them again (fault tests, flag changes).

    `workers=None` restarts as many as were recorded (at least one). Each keeps
    the environment overrides it had unless `worker_env` replaces them.
    """
    paths = _paths()
    with _stack_lock(paths):
        stack = _read_json(paths.stack_file)
        if not stack:
            raise DevStackError("the stack is not up; run `seatflow dev up` first")
        records = _worker_records(paths)
        count = workers if workers is not None else max(len(records), 1)
        previous = {int(r["index"]): dict(r.get("env") or {}) for r in records}
        for rec in records:
            _stop_process(rec, timeout)
            paths.record(str(rec["name"])).unlink(missing_ok=True)
        plan = _plan(paths, None, None)
        database_url = _settings(paths).database_url or str(stack.get("database_url"))
        env = _child_env(paths, plan, database_url)
        env["TEMPORAL_ADDRESS"] = str(stack["temporal_address"])
        base_metrics = stack.get("metrics_port") or _metrics_port(plan.settings)
        started = []
        for index in range(1, count + 1):
            overrides = dict(worker_env) if worker_env is not None else previous.get(
                index, previous.get(1, {}))
            overrides.pop("SEATFLOW_METRICS_ADDRESS", None)
            started.append(_start_worker(paths, env, index, int(base_metrics), overrides))
        _wait_for_workers(paths, str(stack["temporal_address"]), str(stack["namespace"]),
                          str(stack["task_queue"]), started, worker_ready_timeout)
    return status()
