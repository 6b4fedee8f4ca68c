"""Replay every committed workflow history: a change that would break running
workflows (non-determinism) fails here, in CI, before it reaches a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import WORKFLOWS
from workflows.runner import workflow_runner

ROOT = Path(__file__).parent / "histories"
# Current recordings at the top; pre_one_hop/ keeps histories recorded before
# the one-hop-attempt patch, so workflows started then still replay.
HISTORIES = sorted(ROOT.rglob("*.json"))
EVERY_PATH = {
    "happy_path", "manual_review_then_assign", "manual_review_then_retry",
    "manual_review_then_reject", "cancel_in_manual_review", "invalid_booking",
    "manual_review_expired", "legacy_path", "legacy_with_shadow_child",
    "version_conflict_reload", "update_refused_behind_signal_decision",
    "update_and_signal_in_one_task", "update_and_cancel_in_one_task", "stale_decision_dropped",
    "cancel_during_email_send", "manual_review_continued_as_new", "start_passed_manual_review",
}


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT).with_suffix(""))


def test_histories_of_every_path_are_committed() -> None:
    current = {p.stem for p in ROOT.glob("*.json")}
    assert current >= EVERY_PATH, sorted(EVERY_PATH - current)
    old = {p.stem for p in (ROOT / "pre_one_hop").glob("*.json")}
    assert {"happy_path", "manual_review_then_assign", "cancel_in_manual_review"} <= old


@pytest.mark.parametrize("path", HISTORIES, ids=[_name(p) for p in HISTORIES])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner()).replay_workflow(history)
