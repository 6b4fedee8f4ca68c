"""CPU time per process kind, for bench/pipeline.py (issue 27).

CPU seconds (user + system) read from the kernel through psutil, children
included: a process's own time, plus the time of its children already
reaped (`children_user` / `children_system`), plus, for PostgreSQL, the live
backends under the postmaster. The kinds:

- `worker`: the seatflow worker processes (`python -m worker`);
- `noop_worker`: the ceiling's worker processes (bench/noop_worker.py);
- `temporal`: the Temporal dev server (a child of this process);
- `postgres`: the postmaster of the bench's pgserver and every backend;
- `client`: this process, the load generator: intake through
  seatflow.service and the Temporal client, doing the API's part (the bench
  calls the service in process; there is no API process).

A process waiting for a core spends no CPU time, so CPU time per booking
depends on the box's load far less than latency does; but not at all is not
true: on the shared 2-core box the same work cost up to 50% more CPU time in
one run than in another (caches, hyperthreads, the GIL handed between more
threads). bench/pipeline.py therefore also divides it by the trivial
workflow's in the same run. The load average is recorded beside each sample.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

KINDS = ("worker", "noop_worker", "temporal", "postgres", "client")


def _own(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _seconds(pids: Iterable[int], *, with_live_children: bool = False) -> float:
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            total += _own(p)
            if with_live_children:
                for child in p.children(recursive=True):
                    try:
                        total += _own(child)
                    except psutil.NoSuchProcess:
                        pass
        except psutil.NoSuchProcess:
            pass  # it exited: its time is gone from both samples' view
    return total


class CpuMeter:
    """Samples CPU seconds per kind; `delta(before, after)` is a phase's cost."""

    def __init__(self, pg_dir: Path):
        self.pg_dir = pg_dir
        self.workers: dict[str, list[int]] = {"worker": [], "noop_worker": []}

    def postmaster(self) -> int | None:
        try:
            return int((self.pg_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def temporal(self) -> list[int]:
        me = psutil.Process()
        found = []
        for child in me.children(recursive=True):
            try:
                if "temporal" in child.name() or any(
                        "temporal" in Path(a).name for a in child.cmdline()[:1]):
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                pass
        return found

    def sample(self) -> dict[str, float]:
        pm = self.postmaster()
        return {
            "worker": _seconds(self.workers["worker"]),
            "noop_worker": _seconds(self.workers["noop_worker"]),
            "temporal": _seconds(self.temporal(), with_live_children=True),
            "postgres": _seconds([pm] if pm else [], with_live_children=True),
            "client": _client_seconds(),
        }


def _client_seconds() -> float:
    """This process's own CPU (its reaped children are the worker processes
    of earlier phases: not the client's)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def per_item(before: dict[str, float], after: dict[str, float], items: int,
             kinds: Iterable[str]) -> dict[str, Any]:
    """Milliseconds of CPU per item (booking or trivial workflow) per kind,
    and their total."""
    out: dict[str, Any] = {}
    for kind in kinds:
        out[kind] = round((after[kind] - before[kind]) * 1000 / items, 2)
    out["total"] = round(sum(out[k] for k in kinds), 2)
    out["load_average_1m"] = round(os.getloadavg()[0], 2)
    return out
