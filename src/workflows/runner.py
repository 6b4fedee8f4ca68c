"""The workflow runner every worker (and the replay tests) uses, and the
sandbox that checks the workflow code in CI.

The workers run workflows without temporalio's sandbox (issue 27,
docs/performance.md "The workflow runner"). The sandbox builds a fresh module
environment for every workflow run and proxies what the code touches; with
one workflow task per booking that cost a quarter of the worker's CPU per
booking, measured (a booking's history replays in ~7 ms of CPU without it,
~11 ms with it, on this box). What it guards is kept, in CI:

- determinism: every recorded history (tests/histories, one per path of the
  workflow) replays with `workflow_runner()`, the worker's own runner
  (tests/pure/test_replay.py), so a change of the command sequence fails
  there before it reaches a worker;
- forbidden calls (clock, random, I/O, threads) and module state: the same
  histories replay again inside the sandbox, `sandbox_check_runner()`, whose
  restrictions raise on such a call on any recorded path.

The workflow code keeps no mutable module-level state (its state is the
workflow instance's), and takes time, randomness and waits from
`temporalio.workflow` only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Modules the checking sandbox takes from the worker instead of importing
# them afresh inside: they keep no mutable module-level state and are not
# workflow code (`seatflow.domain`'s pure models and policies,
# `seatflow.metrics`, the activity classes whose methods the workflows
# reference, pydantic). NOT `workflows`: a module passed through keeps its
# real `datetime`, `random`, ..., so the sandbox would check nothing in it.
SANDBOX_PASSTHROUGH = ("activities", "seatflow", "pydantic", "pydantic_core", "sqlalchemy",
                       "structlog")


def workflow_runner() -> WorkflowRunner:
    """The runner of every worker process (and of the replay and workflow tests)."""
    return UnsandboxedWorkflowRunner()


# Workflow activations run on one thread of their own, shared by the
# process's workers, not on the SDK's default pool of
# max_concurrent_workflow_tasks (100) threads (issue 27, docs/performance.md
# "Where activations run"): under a burst the event loop (which runs the
# activities) and up to 100 activation threads contended for the GIL, for
# work the GIL serialises anyway. The SDK's 2 s deadlock detector still
# watches every activation: a workflow task that blocks fails and says where.
# (Running them on the loop itself, the SDK's `debug_mode`, measured lower
# still but turns the detector off and installs a debugger hook: a debugging
# switch, not a production one.) None: the SDK's own pool.
ACTIVATION_THREADS: int | None = 1
_activations: ThreadPoolExecutor | None = None


def worker_options() -> dict[str, Any]:
    """How every worker process (booking, shadow, the bench's floor) runs its
    workflows: no sandbox, activations on ACTIVATION_THREADS threads."""
    global _activations
    options: dict[str, Any] = {"workflow_runner": workflow_runner()}
    if ACTIVATION_THREADS is not None:
        if _activations is None:
            _activations = ThreadPoolExecutor(ACTIVATION_THREADS,
                                              thread_name_prefix="workflow-activation")
        options["workflow_task_executor"] = _activations
    return options


def sandbox_check_runner(*passthrough: str) -> SandboxedWorkflowRunner:
    """The sandbox, for CI: replaying a history in it fails on a call the
    workflow code must not make. `passthrough`: more modules to take as they are."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default
                                   .with_passthrough_modules(*SANDBOX_PASSTHROUGH, *passthrough))
