"""The pipeline decision: feature flags read fresh from the environment on
every call, so a flag change reaches bookings already in flight."""

from __future__ import annotations

from temporalio import activity

from seatflow.config import Settings, load_flags, rollout_bucket
from seatflow.domain.messages import DecisionRequest, PipelineDecision


class FlagActivities:
    def __init__(self, settings: Settings):
        self.settings = settings

    @activity.defn(name="decide_pipeline")
    async def decide_pipeline(self, req: DecisionRequest) -> PipelineDecision:
        flags = load_flags()
        v3 = flags.v3_enabled_for(req.restaurant_id)
        return PipelineDecision(
            pipeline="v3" if v3 else "legacy",
            shadow=flags.shadow and not v3,
            max_parallel=flags.max_parallel,
            max_attempts=self.settings.max_attempts,
            retry_base_seconds=self.settings.retry_base_seconds,
            retry_cap_seconds=self.settings.retry_cap_seconds,
            manual_review_timeout_seconds=self.settings.manual_review_timeout_seconds,
            legacy_delays_seconds=self.settings.legacy_delays,
            shadow_task_queue=self.settings.shadow_task_queue,
            inputs={
                "v3": flags.v3,
                "rollout_percent": flags.rollout_percent,
                "bucket": rollout_bucket(req.restaurant_id),
                "allowlist": sorted(flags.restaurant_allowlist),
            },
        )
