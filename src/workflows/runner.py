"""The workflow runner every worker (and the replay tests) uses."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Modules the workflow sandbox takes from the worker instead of re-importing
# them for every workflow run. The sandbox still checks every call the
# workflow makes (no clock, no I/O, no threads); what it no longer does is
# re-execute these modules per run, which cost more CPU than the workflow
# logic itself (see docs/performance.md). They qualify because they keep no
# mutable module-level state: `workflows` (the workflow classes and constants),
# `seatflow.domain` (pure models and policies), `seatflow.metrics`, the
# activity classes whose methods the workflows reference, and pydantic.
# The replay tests (tests/pure/test_replay.py) run with this same runner and guard
# determinism.
SANDBOX_PASSTHROUGH = ("workflows", "activities", "seatflow", "pydantic", "pydantic_core",
                       "sqlalchemy", "structlog")


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*SANDBOX_PASSTHROUGH)
    )
