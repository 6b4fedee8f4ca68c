"""`seatflow demo` end to end on an isolated stack, plus the shape of its evening."""

from __future__ import annotations

import importlib.util
import random
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from seatflow import devstack
from seatflow.demo import plan_evening, run_demo

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_demo_evening_looks_like_a_real_dinner_book() -> None:
    tz = ZoneInfo("Europe/London")
    bookings = plan_evening(date(2030, 6, 14), tz, 120, random.Random(7))

    parties = Counter(b.party_size for b in bookings)
    assert len(bookings) == 120
    assert parties[2] > 50  # mostly couples
    assert parties[3] + parties[4] > 15
    assert parties[9] + parties[10] == 2
    assert all((17, 0) <= (b.start.hour, b.start.minute) <= (22, 0) for b in bookings)
    assert all(b.start.tzinfo == tz and b.start.date() == date(2030, 6, 14) for b in bookings)
    assert 3 <= sum(1 for b in bookings if b.zone) <= 30


@pytest.fixture
def demo_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="seatflow-demo-"))
    with pytest.MonkeyPatch.context() as mp:
        for name in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE",
                     "SEATFLOW_TASK_QUEUE", "FEATURE_ASSIGNMENT_PIPELINE_V3"):
            mp.delenv(name, raising=False)
        mp.setenv("SEATFLOW_HOME", str(home))
        mp.setenv("SEATFLOW_DEV_TEMPORAL_PORT", str(free_port()))
        mp.setenv("SEATFLOW_DEV_UI_PORT", str(free_port()))
        mp.setenv("SEATFLOW_METRICS_ADDRESS", f"127.0.0.1:{free_port()}")
        try:
            yield home
        finally:
            devstack.down(timeout=5)
            shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(importlib.util.find_spec("worker") is None, reason="worker not built yet")
def test_demo_books_an_evening_through_the_pipeline(demo_home: Path) -> None:
    summary = run_demo(12, seed=3, timeout=120, console=Console(quiet=True))

    assert summary.unsettled == 0
    assert summary.states["confirmed"] >= 10
    assert len(summary.latencies) == summary.states["confirmed"]
    assert summary.ui_url and summary.manual_review_url
    assert "AssignmentState%3D%22manual_review%22" in summary.manual_review_url
    worker = devstack.status().component("worker-1")
    assert worker is not None and worker.state == "running"
