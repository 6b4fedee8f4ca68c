"""The `seatflow` CLI as the tests run it: one real process per command,
forked from a server that imported the CLI once.

Starting an interpreter and importing the CLI costs 1.5-2 s of CPU; the suite
runs well over a hundred commands. `CliServer` starts one process that imports
`seatflow.cli` (and nothing else: no settings read, no client, no thread), then
forks a child per command. The child takes the command's environment, working
directory and arguments, runs `seatflow.cli.main()` as the console script does,
writes to its own stdout and stderr files and exits with the command's status.
What a command does and prints is the installed CLI's; what is not exercised is
the interpreter's start and the import itself, which `tests/e2e/test_wheel.py`
and the subprocess-only cases (`python -m seatflow.worker`, ...) still cover.

Requests and answers are JSON lines over the server's stdin and stdout; the
server runs at most `parallel` children at once and answers in completion
order. The server is single-threaded (a fork from a threaded process could copy
a held lock), so it polls its children between reads.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Done:
    """A finished command: exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


class CliServer:
    """The fork server (started on first use). `run` is thread-safe."""

    def __init__(self, parallel: int = 6) -> None:
        self._parallel = parallel
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[Future[Done], Path]] = {}
        self._next = 0
        self._reader: threading.Thread | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="seatflow-cli-"))

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.cli_support", str(self._parallel)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            )
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self._proc

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            answer = json.loads(line)
            with self._lock:
                future, out = self._waiting.pop(answer["id"])
            stdout = (out / "out").read_text(errors="replace")
            stderr = (out / "err").read_text(errors="replace")
            future.set_result(Done(answer["code"], stdout, stderr))
        with self._lock:  # the server died: fail whoever still waits
            waiting, self._waiting = self._waiting, {}
        for future, _ in waiting.values():
            future.set_exception(RuntimeError("the CLI fork server exited"))

    def submit(self, args: Sequence[str], env: Mapping[str, str],
               cwd: str | Path | None = None) -> Future[Done]:
        future: Future[Done] = Future()
        with self._lock:
            proc = self._start()
            self._next += 1
            request_id = self._next
            out = self._dir / str(request_id)
            out.mkdir()
            self._waiting[request_id] = (future, out)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({
                "id": request_id, "args": list(args), "env": dict(env),
                "cwd": str(cwd or os.getcwd()), "out": str(out),
            }) + "\n")
            proc.stdin.flush()
        return future

    def run(self, args: Sequence[str], env: Mapping[str, str], cwd: str | Path | None = None,
            timeout: float = 120) -> Done:
        """Run `seatflow ARGS` with exactly `env` and wait for it."""
        return self.submit(args, env, cwd).result(timeout=timeout)

    async def arun(self, args: Sequence[str], env: Mapping[str, str],
                   cwd: str | Path | None = None, timeout: float = 120) -> Done:
        """`run` for a coroutine: the event loop runs on meanwhile."""
        return await asyncio.wait_for(asyncio.wrap_future(self.submit(args, env, cwd)), timeout)

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
            self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)


_shared: CliServer | None = None


def seatflow_cli() -> CliServer:
    """The test process's one server, closed when the process exits."""
    global _shared
    if _shared is None:
        _shared = CliServer()
        atexit.register(_shared.close)
    return _shared


# ------------------------------------------------------------------ server side


def _child(request: dict[str, object]) -> None:
    """In the forked child: become the command and exit with its status."""
    out = Path(str(request["out"]))
    stdout = os.open(out / "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    stderr = os.open(out / "err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
    os.chdir(str(request["cwd"]))
    sys.argv = ["seatflow", *[str(a) for a in request["args"]]]  # type: ignore[attr-defined]
    # As the console script's `__main__`: click names the program `seatflow`,
    # not `python -m tests.seatflow`.
    sys.modules["__main__"].__package__ = None
    code = 1
    try:
        import seatflow.cli

        seatflow.cli.main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - printed like the interpreter would
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _serve(parallel: int) -> None:
    import seatflow.cli  # noqa: F401 - what every child would import

    running: dict[int, int] = {}  # pid -> request id
    queue: list[dict[str, object]] = []
    stdin_open, pending = True, b""
    while stdin_open or queue or running:
        while queue and len(running) < parallel:
            request = queue.pop(0)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            running[pid] = int(str(request["id"]))
        if stdin_open:
            ready, _, _ = select.select([0], [], [], 0.02 if running else None)
            if ready:
                chunk = os.read(0, 1 << 16)
                stdin_open = bool(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                queue.extend(json.loads(line) for line in lines if line.strip())
        elif running:
            select.select([], [], [], 0.02)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            request_id = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            print(json.dumps({"id": request_id, "code": code}), flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
