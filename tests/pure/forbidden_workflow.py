"""The booking workflow with a call workflow code must not make, for
tests/pure/test_replay.py: the sandbox check has to catch it. A module of its
own, importing only what workflow code does, so the sandbox imports it
afresh (and restricts it) as it does `workflows`."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seatflow.domain.messages import BookingOutcome, BookingWorkflowInput
from workflows.booking import BookingAssignmentWorkflow


@workflow.defn(name="BookingAssignmentWorkflow")
class ReadsTheWallClock(BookingAssignmentWorkflow):
    @workflow.run
    async def run(self, inp: BookingWorkflowInput) -> BookingOutcome:
        datetime.now()  # the point: workflow code must not read the clock
        return await super().run(inp)
