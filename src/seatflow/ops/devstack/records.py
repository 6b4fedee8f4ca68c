"""Process records: where the stack keeps its files (var/), the pid records in
var/run/ (with the process start time, so a reused pid is never signalled),
starting a process in its own session and stopping it with its session, and
the lock that lets one `up`/`down`/`restart` run at a time."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # shipped with pgserver, which we need anyway

from seatflow.config import project_root
from seatflow.ops.devstack.model import Component, DevStackError

STOP_TIMEOUT_SECONDS = 10.0


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


def stack_paths() -> Paths:
    return Paths(project_root())


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def stack_lock(paths: Paths) -> Iterator[None]:
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


def live_process(record: Mapping[str, Any] | None) -> psutil.Process | None:
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


def exit_detail(record: Mapping[str, Any], paths: Paths) -> str:
    code = None
    child = _children.get(int(record.get("pid", 0)))
    if child is not None:
        code = child.poll()
    log = relative(Path(record.get("log", paths.log(str(record.get("name"))))), paths)
    suffix = f" with code {code}" if code is not None else ""
    return f"exited{suffix}, see {log}"


def relative(path: Path, paths: Paths) -> str:
    try:
        return str(path.relative_to(paths.home))
    except ValueError:
        return str(path)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join("    " + line for line in text[-lines:])


def binary(name: str) -> str:
    """A binary shipped by a pip package into this venv's bin/, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise DevStackError(f"`{name}` not found next to {sys.executable} or on PATH; "
                            f"run `make install`")
    return found


def spawn(name: str, cmd: list[str], paths: Paths, env: Mapping[str, str],
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
    write_json(paths.record(name), record)
    return record


def stop_process(record: Mapping[str, Any], timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the recorded process (and its session's group), SIGKILL after `timeout`."""
    proc = live_process(record)
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


def process_component(paths: Paths, rec: Mapping[str, Any]) -> Component:
    """A process `dev up` spawned (worker, intake relay, API) as `status` reports it."""
    proc = live_process(rec)
    log = relative(Path(rec.get("log", paths.log(str(rec["name"])))), paths)
    if proc is None:
        return Component(str(rec["name"]), "exited", managed=True, pid=rec.get("pid"),
                         log=log, detail=exit_detail(rec, paths))
    detail = "polling the task queue" if rec.get("polling") else ""
    return Component(str(rec["name"]), "running", managed=True, pid=proc.pid, log=log,
                     detail=detail)
