"""The pipeline decision: feature flags as they are now (re-read when the
environment or .env changed), so a flag change reaches bookings already in
flight."""

from __future__ import annotations

from temporalio import activity

from seatflow.config import Settings, current_flags
from seatflow.domain.messages import DecisionRequest, PipelineDecision
from seatflow.service.rollout import decide as rollout_decision


class FlagActivities:
    def __init__(self, settings: Settings, *, email_local: bool = False):
        self.settings = settings
        self.email_local = email_local

    @activity.defn(name="decide_pipeline")
    async def decide_pipeline(self, req: DecisionRequest) -> PipelineDecision:
        return decide(self.settings, req.restaurant_id, email_local=self.email_local)


def decide(settings: Settings, restaurant_id: str, *, email_local: bool = False
           ) -> PipelineDecision:
    """The flags and retry policy in force for a restaurant, read now (the
    rollout rule itself is `seatflow.service.rollout.decide`, the one
    `seatflow flags` explains). `email_local`: the worker's mail transport is
    local (seatflow.mail.is_local)."""
    flags = current_flags()
    rollout = rollout_decision(flags, restaurant_id)
    return PipelineDecision(
        pipeline=rollout.pipeline,
        shadow=rollout.shadow,
        max_parallel=rollout.max_parallel,
        max_attempts=settings.max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_cap_seconds=settings.retry_cap_seconds,
        manual_review_timeout_seconds=settings.manual_review_timeout_seconds,
        legacy_delays_seconds=settings.legacy_delays,
        shadow_task_queue=settings.shadow_task_queue,
        email_local=email_local,
        inputs={
            "v3": flags.v3,
            "rollout_percent": flags.rollout_percent,
            "bucket": rollout.bucket,
            "allowlist": sorted(flags.restaurant_allowlist),
        },
    )
