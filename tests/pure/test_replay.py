"""Replay every committed workflow history: a change that would break running
workflows (non-determinism) fails here, in CI, before it reaches a worker.

The histories in tests/histories/ are the v1 baseline: one per path of the
booking workflow, recorded with `SEATFLOW_RECORD_HISTORIES=1` (see
docs/architecture.md, "Changing the workflow safely"). A later change of the
command sequence keeps them and adds its own, under a `workflow.patched` id
(`cancellation-message`, `email-local-activity`: the histories named below).

Each history replays twice: with the worker's runner (`workflow_runner()`,
no sandbox: what runs in production) for determinism, and inside temporalio's
sandbox (`sandbox_check_runner()`), which fails on a call workflow code must
not make (clock, random, I/O) on any recorded path: the workers run without
the sandbox for its CPU cost (docs/performance.md), so CI keeps its check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import WORKFLOWS
from workflows.booking import BookingAssignmentWorkflow
from workflows.converter import DATA_CONVERTER
from workflows.runner import sandbox_check_runner, workflow_runner

from .forbidden_workflow import ReadsTheWallClock

ROOT = Path(__file__).resolve().parents[1] / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))
EVERY_PATH = {
    # automatic attempts
    "happy_path", "five_failed_attempts_to_manual_review", "busy_restaurant_then_confirmed",
    "version_conflict_reload", "invalid_booking", "start_passed_manual_review",
    # each operator decision
    "manual_review_then_assign", "manual_review_then_retry", "manual_review_then_reject",
    "retries_then_review_retry_then_confirmed", "manual_review_expired",
    "bad_signals_then_signal_assign", "stale_decision_dropped",
    "update_refused_behind_signal_decision", "update_and_signal_in_one_task",
    # cancel at each stage
    "cancel_during_backoff", "cancel_in_manual_review", "cancel_during_email_send",
    "update_and_cancel_in_one_task", "malformed_cancels_then_cancel",
    # continue-as-new
    "manual_review_continued_as_new",
    # the rollout: legacy path, its shadow child, the kill switch
    "legacy_path", "legacy_with_shadow_child", "kill_switch_to_legacy",
    # patch "cancellation-message": a cancel sends the guest's cancellation
    # message and still tells the guests the confirm moved
    "cancel_during_email_send_sends_cancellation",
    "cancel_after_confirm_tells_moved_guest_and_cancels",
    "cancel_while_pending_asks_for_cancellation", "retry_after_commit_tells_moved_guest",
    # patch "email-local-activity": with the file mailbox the guest's messages
    # are local activities, in the workflow task that confirmed
    "happy_path_email_local", "cancel_during_local_email_send",
}


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT).with_suffix(""))


def test_histories_of_every_path_are_committed() -> None:
    current = {p.stem for p in ROOT.glob("*.json")}
    assert current >= EVERY_PATH, sorted(EVERY_PATH - current)


@pytest.mark.parametrize("path", HISTORIES, ids=[_name(p) for p in HISTORIES])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The worker's data converter: the histories' payloads decode as they do there.
    await Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner(),
                   data_converter=DATA_CONVERTER).replay_workflow(history)


@pytest.mark.parametrize("path", HISTORIES, ids=[_name(p) for p in HISTORIES])
async def test_history_replays_inside_the_sandbox(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, workflow_runner=sandbox_check_runner(),
                   data_converter=DATA_CONVERTER).replay_workflow(history)


async def test_the_sandbox_check_catches_a_forbidden_call() -> None:
    path = ROOT / "happy_path_email_local.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    workflows = [ReadsTheWallClock, *(w for w in WORKFLOWS if w is not BookingAssignmentWorkflow)]
    # the worker's runner replays it (the history has no trace of the call) ...
    await Replayer(workflows=workflows, workflow_runner=workflow_runner(),
                   data_converter=DATA_CONVERTER).replay_workflow(history)
    # ... the sandbox refuses it
    result = await Replayer(workflows=workflows, workflow_runner=sandbox_check_runner(),
                            data_converter=DATA_CONVERTER).replay_workflow(
        history, raise_on_replay_failure=False)
    assert "Cannot access datetime.datetime.now" in str(result.replay_failure)
