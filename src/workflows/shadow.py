"""ShadowAssignmentWorkflow: V3 beside the legacy path, without side effects.

Started by the booking workflow as an abandoned child (id `shadow-{booking_id}`)
after the legacy path finished, on its own task queue. It reads:

    search the floor the legacy path saw   (read-only activity)
    walk the state machine in memory       (created -> ... -> confirmed | manual_review)
    compare with the legacy outcome        (pure)
    record one comparison event            (idempotent; observability_events only)

Any failure records an `assignment.shadow.error` event (best effort) and fails
this workflow only: the booking never waits for it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.shadow import ShadowActivities
    from seatflow import metrics
    from seatflow.domain.shadow import (
        ShadowComparison,
        ShadowError,
        ShadowInput,
        check_input,
        compare,
        simulate_assignment,
    )

WORKFLOW_NAME = "ShadowAssignmentWorkflow"

# A shadow is worth a few tries, not an outage's worth: it must end, and its
# failure is reported, not retried forever.
SHADOW_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
    non_retryable_error_types=["ShadowBookingNotFound", "InvalidShadowInput"],
)
ERROR_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=3)
ACTIVITY_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=WORKFLOW_NAME)
class ShadowAssignmentWorkflow:
    def __init__(self) -> None:
        self._stage = "start"

    @workflow.run
    async def run(self, inp: ShadowInput) -> ShadowComparison:
        try:
            return await self._shadow(inp)
        except (ActivityError, ApplicationError, ValueError, LookupError) as err:
            # InvalidShadowInput and IllegalTransition are ValueErrors: a bad
            # input or a state machine V3 cannot follow ends the shadow, reported.
            await self._record_error(inp, err)
            raise ApplicationError(
                f"shadow of booking {inp.booking_id} failed at {self._stage}: {_message(err)}",
                type="ShadowFailed",
                non_retryable=True,
            ) from err

    async def _shadow(self, inp: ShadowInput) -> ShadowComparison:
        self._stage = "input"
        check_input(inp)
        self._stage = "search"
        found = await workflow.execute_activity_method(
            ShadowActivities.shadow_search,
            inp,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=SHADOW_RETRY,
        )
        self._stage = "state_machine"
        v3 = simulate_assignment(inp.booking_id, found, found.max_attempts)
        comparison = compare(inp, found, v3)
        self._stage = "record"
        await workflow.execute_activity_method(
            ShadowActivities.record_shadow_comparison,
            comparison,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=SHADOW_RETRY,
        )
        metrics.record_shadow_comparison(workflow.metric_meter(), comparison.agree)
        workflow.set_current_details(
            f"legacy {comparison.legacy_outcome}, V3 {comparison.v3_outcome}: "
            + ("agree" if comparison.agree else f"disagree ({comparison.why})")
        )
        return comparison

    async def _record_error(self, inp: ShadowInput, err: BaseException) -> None:
        cause = err.cause if isinstance(err, ActivityError) and err.cause else err
        try:
            await workflow.execute_activity_method(
                ShadowActivities.record_shadow_error,
                ShadowError(
                    booking_id=inp.booking_id,
                    restaurant_id=inp.restaurant_id,
                    stage=self._stage,
                    error=_message(cause),
                    error_type=getattr(cause, "type", None) or type(cause).__name__,
                    legacy_outcome=inp.legacy_outcome,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ERROR_RETRY,
            )
        except ActivityError as record_err:  # best effort: the failure itself is the report
            workflow.logger.warning(
                "shadow of booking %s: could not record its error: %s",
                inp.booking_id, _message(record_err),
            )


def _message(err: BaseException) -> str:
    if isinstance(err, ActivityError) and err.cause is not None:
        return _message(err.cause)
    return getattr(err, "message", None) or str(err)
