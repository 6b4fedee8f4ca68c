"""Shared fixtures: real PostgreSQL (embedded pgserver or DATABASE_URL) and
real Temporal servers from pip packages (nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from seatflow.config import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Read by tests/run.py: the verdict, written before interpreter shutdown.
    status_file = os.environ.get("SEATFLOW_PYTEST_STATUS_FILE")
    if status_file:
        Path(status_file).write_text(str(int(exitstatus)))


def binary(name: str) -> str:
    """A server binary shipped by a pip package into this venv's bin/."""
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} not found next to {sys.executable}; run `make install`")
        return found
    return str(path)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session."""
    from seatflow.storage.db import upgrade

    explicit = os.environ.get("DATABASE_URL")
    if explicit:
        upgrade(explicit)
        yield explicit
        return
    from seatflow.storage.embedded import start_embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="seatflow-pg-"))
    url = start_embedded_postgres(tmp / "pg", persistent=False)
    upgrade(url)
    yield url
    import pgserver

    pgserver.get_server(tmp / "pg").cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def db_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    from seatflow.storage.db import make_engine

    engine = make_engine(pg_url, pool_size=20, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
def unique_id() -> str:
    """A short unique slug, so tests sharing one database never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A task queue of this test's own, named after its module (e.g.
    `test_policy-1a2b3c4d`), so workers of different tests never share work.
    Every workflow test module uses this one fixture."""
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    return f"{module}-{uuid.uuid4().hex[:8]}"


async def _time_skipping_server() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    # The test server knows no custom search attribute until it is registered.
    await register_search_attributes(env.client)
    return env


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server for workflow logic: time skips while a test
    waits on a workflow's result, and runs normally otherwise."""
    env = await _time_skipping_server()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server for one test. For a test whose workflows
    start children with ParentClosePolicy.ABANDON: after those the test
    server's clock stops skipping for good (a known test-server bug,
    temporalio/sdk-typescript#1101), and a later test of the session waiting on
    a timer hung."""
    env = await _time_skipping_server()
    yield env
    await env.shutdown()


@pytest.fixture
def ts_client(time_skipping_env: WorkflowEnvironment) -> Client:
    """A client of the time-skipping server (its handles skip time in `result()`)."""
    return time_skipping_env.client


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    """A client of the real-time dev server (visibility, search attributes)."""
    return dev_env.client


async def register_search_attributes(client: Client) -> None:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from seatflow.domain.search_attributes import REGISTRATION

    types = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT}
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: types[kind] for name, kind in REGISTRATION.items()},
        )
    )


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (real time, visibility, search attributes)."""
    from seatflow.domain.search_attributes import ALL

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(ALL),
        dev_server_log_level="error",
        ui=False,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def mailbox(tmp_path: Path) -> Path:
    return tmp_path / "mailbox"


@pytest.fixture
def test_settings(pg_url: str, mailbox: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a worker under test: fast retries, the V3 pipeline on."""
    from seatflow.config import load_settings

    monkeypatch.setenv("FEATURE_ASSIGNMENT_PIPELINE_V3", "true")
    return load_settings(
        DATABASE_URL=pg_url,
        SEATFLOW_MAILBOX_DIR=str(mailbox),
        SEATFLOW_RETRY_BASE_SECONDS=0.02,
        SEATFLOW_RETRY_CAP_SECONDS=0.2,
    )
