"""`seatflow dev up | down | status` against real pgserver and Temporal dev servers.

Every test runs in its own SEATFLOW_HOME (a temp dir) on free ports, so a
developer's running stack is never touched.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from seatflow.ops import devstack

pytestmark = pytest.mark.e2e

STACK_VARIABLES = ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE",
                   "SEATFLOW_TASK_QUEUE", "SEATFLOW_DEV_TEMPORAL_PORT", "SEATFLOW_DEV_UI_PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """One isolated stack: its home and ports."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.ui_port = free_port()
        self.metrics_port = free_port()
        self.api_port = free_port()

    def up(self, workers: int = 0, **kwargs: Any) -> devstack.StackStatus:
        return devstack.up(workers, temporal_port=self.port, ui_port=self.ui_port,
                           metrics_port=self.metrics_port, api_port=self.api_port, timeout=60,
                           worker_ready_timeout=5, **kwargs)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"


@pytest.fixture
def isolated_env() -> Iterator[Path]:
    # Not pytest's tmp_path: pytest resets its base dir to mode 0700 whenever any
    # session starts, which locks out the `pgserver` user PostgreSQL runs as under root.
    home = Path(tempfile.mkdtemp(prefix="seatflow-e2e-"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in STACK_VARIABLES:
                mp.delenv(name, raising=False)
            mp.setenv("SEATFLOW_HOME", str(home))
            yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def stack(isolated_env: Path) -> Iterator[Stack]:
    s = Stack(isolated_env)
    try:
        yield s
    finally:
        devstack.down(timeout=5)


def recorded_pids(home: Path) -> dict[str, int]:
    pids = {}
    for path in (home / "var" / "run").glob("*.json"):
        data = json.loads(path.read_text())
        if isinstance(data.get("pid"), int):
            pids[data["name"]] = data["pid"]
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


async def custom_search_attributes(address: str) -> dict[str, int]:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    client = await Client.connect(address)
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default"))
    return dict(resp.custom_attributes)


def test_up_starts_postgres_and_temporal_and_status_says_where(stack: Stack) -> None:
    result = stack.up()

    assert result.running
    assert result.ui_url == f"http://localhost:{stack.ui_port}"
    assert result.temporal_address == stack.address
    assert result.database_url and "postgres" in result.database_url
    # The intake relay runs beside the worker (it starts workflows of bookings
    # accepted while Temporal was down).
    assert {c.name: c.state for c in result.components} == {
        "postgres": "running", "temporal": "running", "intake-relay": "running",
        "api": "running"}
    assert result.api_url == f"http://127.0.0.1:{stack.api_port}"
    assert (stack.home / "var" / "temporal.db").exists()
    assert (stack.home / "var" / "log" / "temporal.log").exists()
    assert devstack.status().to_dict() == result.to_dict()

    seatflow = Path(sys.executable).parent / "seatflow"
    cli = subprocess.run([str(seatflow), "dev", "status", "--json"], check=True,
                         capture_output=True, text=True, timeout=60)
    assert json.loads(cli.stdout)["ui_url"] == f"http://localhost:{stack.ui_port}"
    assert json.loads(cli.stdout)["api_url"] == result.api_url


def test_up_serves_the_api_with_dev_tokens_kept_out_of_records_and_logs(stack: Stack) -> None:
    import httpx

    result = stack.up()
    assert result.api_url is not None
    tokens_file = stack.home / "var" / "api-tokens.json"
    assert tokens_file.stat().st_mode & 0o777 == 0o600
    tokens = {t["role"]: t["token"] for t in json.loads(tokens_file.read_text())}
    deadline = time.monotonic() + 30
    health = None
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{result.api_url}/healthz", timeout=5)
            if health.status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    assert health is not None and health.json() == {
        "status": "ok", "database": "ok", "temporal": "ok"}
    queue = httpx.get(f"{result.api_url}/v1/review", timeout=10,
                      headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert queue.status_code == 200 and queue.json() == []
    refused = httpx.get(f"{result.api_url}/v1/review", timeout=10,
                        headers={"Authorization": f"Bearer {tokens['host']}"})
    assert refused.status_code == 403
    text = (stack.home / "var" / "run" / "api.json").read_text()
    text += (stack.home / "var" / "log" / "api.log").read_text()
    assert all(token not in text for token in tokens.values())
    cli = subprocess.run([str(Path(sys.executable).parent / "seatflow"), "dev", "status"],
                         check=True, capture_output=True, text=True, timeout=60)
    assert f"api:       {result.api_url}" in cli.stdout
    assert "tokens in var/api-tokens.json" in cli.stdout
    # The host page: its index, and a restaurant's timeline page (a shell: no data
    # without a token), from the packaged templates and script.
    assert result.host_url == f"{result.api_url}/host/"
    assert f"host:      {result.host_url}<restaurant id>" in cli.stdout
    for path in ("", "harbour-kitchen", "static/host.js"):
        page = httpx.get(f"{result.host_url}{path}", timeout=10)
        assert page.status_code == 200, (path, page.text)


def test_search_attributes_are_registered(stack: Stack) -> None:
    from temporalio.api.enums.v1 import IndexedValueType

    stack.up()

    attributes = asyncio.run(custom_search_attributes(stack.address))

    kinds = {name: IndexedValueType.Name(v) for name, v in attributes.items()}
    assert kinds["AssignmentState"] == "INDEXED_VALUE_TYPE_KEYWORD"
    assert kinds["RestaurantId"] == "INDEXED_VALUE_TYPE_KEYWORD"
    assert kinds["AssignmentAttempts"] == "INDEXED_VALUE_TYPE_INT"
    assert kinds["AssignmentPipeline"] == "INDEXED_VALUE_TYPE_KEYWORD"


def test_up_twice_keeps_the_running_pieces(stack: Stack) -> None:
    first = stack.up()
    started = time.monotonic()

    second = stack.up()

    assert time.monotonic() - started < 15
    assert [(c.name, c.pid) for c in second.components] == [
        (c.name, c.pid) for c in first.components]
    assert second.running


def test_down_stops_everything_and_leaves_no_process(stack: Stack) -> None:
    stack.up(workers=1)
    pids = recorded_pids(stack.home)
    assert {"postgres", "temporal", "worker-1"} <= set(pids)

    stopped = devstack.down()

    assert {"postgres", "temporal"} <= set(stopped)
    assert wait_gone(list(pids.values())) == []
    assert not any(p.name.endswith(".json") for p in (stack.home / "var" / "run").iterdir())
    after = devstack.status()
    assert {c.name: c.state for c in after.components} == {
        "postgres": "stopped", "temporal": "stopped"}
    assert devstack.down() == []


def test_a_workflow_started_before_down_is_still_there_after_up(stack: Stack) -> None:
    from temporalio.client import Client

    stack.up()
    workflow_id = f"devstack-persistence-{uuid.uuid4().hex[:8]}"

    async def start() -> None:
        client = await Client.connect(stack.address)
        # No worker serves this type or queue: the workflow just stays running.
        await client.start_workflow("NoSuchWorkflow", id=workflow_id,
                                    task_queue="devstack-test-nobody")

    asyncio.run(start())
    devstack.down()
    stack.up()

    async def find() -> list[str]:
        client = await Client.connect(stack.address)
        deadline = time.monotonic() + 15
        while True:
            found = [w.id async for w in client.list_workflows(f'WorkflowId="{workflow_id}"')]
            if found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)

    assert asyncio.run(find()) == [workflow_id]


def test_a_worker_that_exits_at_once_is_reported_with_its_log(stack: Stack) -> None:
    # A child whose interpreter cannot start exits immediately, whatever worker.py does.
    result = stack.up(workers=1, worker_env={"PYTHONHOME": "/nonexistent"})

    worker = result.component("worker-1")
    assert worker is not None and worker.state == "exited"
    assert "see var/log/worker-1.log" in worker.detail
    assert not result.running
    temporal = result.component("temporal")
    assert temporal is not None and temporal.state == "running"


def test_restart_workers_starts_new_processes(stack: Stack) -> None:
    before = stack.up(workers=2, worker_env={"PYTHONHOME": "/nonexistent"})
    old = {w.name: w.pid for w in before.workers}

    after = devstack.restart_workers(worker_env={"PYTHONHOME": "/nonexistent"},
                                     worker_ready_timeout=2)

    new = {w.name: w.pid for w in after.workers}
    assert set(new) == {"worker-1", "worker-2"}
    assert all(new[name] != old[name] for name in new)


def test_down_never_signals_a_process_that_reused_a_recorded_pid(stack: Stack) -> None:
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        run_dir = stack.home / "var" / "run"
        run_dir.mkdir(parents=True)
        # A stale record naming the bystander's pid, from a process started earlier.
        (run_dir / "worker-1.json").write_text(json.dumps({
            "name": "worker-1", "index": 1, "pid": bystander.pid,
            "create_time": psutil.Process(bystander.pid).create_time() - 100,
            "log": str(stack.home / "var" / "log" / "worker-1.log"),
        }))

        devstack.down(timeout=2)

        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_database_url_points_at_an_external_server(stack: Stack, pg_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)

    result = stack.up()

    pg = result.component("postgres")
    assert pg is not None and pg.state == "external" and not pg.managed
    assert result.database_url == pg_url
    assert not (stack.home / "var" / "pg").exists()
    assert "postgres" not in devstack.down()
