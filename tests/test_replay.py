"""Replay every committed workflow history: a change that would break running
workflows (non-determinism) fails here, in CI, before it reaches a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import WORKFLOWS
from workflows.runner import workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_of_every_path_are_committed() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"happy_path", "manual_review_then_assign", "manual_review_then_retry",
            "manual_review_then_reject", "cancel_in_manual_review", "invalid_booking",
            "manual_review_expired"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner()).replay_workflow(history)
