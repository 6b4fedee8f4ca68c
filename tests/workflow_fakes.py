"""In-process stand-ins for the booking workflow's activities, shared by
test_workflow_branches.py and test_workflow_hardening.py.

Each stand-in is registered under the real activity's name
(`@activity.defn(name="begin_booking")`, ...), so the unchanged
`BookingAssignmentWorkflow` calls it. `FakeBookingBase` is one booking as those
activities see it: its state and version, a record of every call, and the
activities whose behaviour both modules share (load the booking, read the
flags, move it to a state the workflow names unless the version is stale).
What the two modules script differently (what an attempt finds, what a confirm,
cancel or email does, which flags are in force) stays in each module's
subclass, which also names the other activities it registers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from temporalio import activity

from seatflow.domain.messages import (
    BeginResult,
    BookingContext,
    DecisionRequest,
    PipelineDecision,
    TransitionRequest,
    TransitionResult,
    VerifyRequest,
)

# The restaurant's tables, as BookingContext.table_ids (for update validation).
TABLES = ("T1", "T2", "T3")


@dataclass(kw_only=True)
class FakeBookingBase:
    """One booking's truth, as the real activities keep it in PostgreSQL, and
    every call the workflow made: (activity name, request)."""

    booking_id: str
    state: str
    version: int
    attempts_used: int = 0
    start: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=2))
    calls: list[tuple[str, Any]] = field(default_factory=list)

    # transition_state's reason when the request names a stale version.
    stale_transition_reason: ClassVar[str | None] = None

    # ----------------------------------------------------------- helpers

    def called(self, name: str) -> list[Any]:
        """The requests of every call of activity `name`, in order."""
        return [req for n, req in self.calls if n == name]

    def names(self) -> list[str]:
        """The activities called, in order."""
        return [n for n, _ in self.calls]

    async def _called(self, name: str, req: Any) -> None:
        """Record a call as it begins (then `_pause`, before it acts)."""
        self.calls.append((name, req))
        await self._pause(name)

    async def _pause(self, name: str) -> None:
        """Where a subclass may hold a call open; by default it goes on."""

    def _reason(self) -> str | None:
        """BookingContext.reason: why the booking failed verification, if it did."""
        return None

    def _context(self) -> BookingContext:
        return BookingContext(
            booking_id=self.booking_id, restaurant_id="r-fake", party_size=4,
            state=self.state, version=self.version, status="pending",
            start=self.start.isoformat(), table_ids=TABLES, reason=self._reason(),
            attempts_used=self.attempts_used,
        )

    def _decision(self) -> PipelineDecision:
        """The flags in force, as begin_booking and decide_pipeline answer them."""
        raise NotImplementedError

    def _begin(self) -> None:
        """What begin_booking does to the booking before it loads it: nothing."""

    def _move(self, to_state: str) -> None:
        """A state change as storage makes it: one version up."""
        self.state = to_state
        self.version += 1

    def _more_activities(self) -> list[Callable[..., Any]]:
        """The subclass's own stand-ins, registered next to the shared ones."""
        return []

    # ------------------------------------------- the activities, by name

    @activity.defn(name="begin_booking")
    async def begin_booking(self, req: VerifyRequest) -> BeginResult:
        await self._called("begin_booking", req)
        self._begin()
        return BeginResult(context=self._context(), decision=self._decision())

    @activity.defn(name="decide_pipeline")
    async def decide_pipeline(self, req: DecisionRequest) -> PipelineDecision:
        await self._called("decide_pipeline", req)
        return self._decision()

    @activity.defn(name="transition_state")
    async def transition_state(self, req: TransitionRequest) -> TransitionResult:
        await self._called("transition_state", req)
        if req.expected_version != self.version:
            return TransitionResult(ok=False, state=self.state, version=self.version,
                                    conflict=True, reason=self.stale_transition_reason)
        self._move(req.to_state)
        return TransitionResult(ok=True, state=self.state, version=self.version)

    def activities(self) -> list[Callable[..., Any]]:
        """Every stand-in, for `Worker(activities=...)`."""
        return [self.begin_booking, self.decide_pipeline,
                self.transition_state, *self._more_activities()]
