"""The V3 rollout as it stands: the flags in force and the pipeline a booking
of a restaurant would get right now, with the reason.

The flags are read fresh from the environment (and `.env`) on every call, as
the worker reads them for every booking; an invalid flag raises ConfigError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from seatflow.config import Flags, load_flags, rollout_bucket
from seatflow.domain.assignment import Pipeline


@dataclass(frozen=True)
class RolloutDecision:
    restaurant_id: str
    pipeline: Pipeline
    shadow: bool  # V3 runs beside the legacy planner, without side effects
    max_parallel: int
    bucket: int  # the restaurant's stable bucket 0..99
    why: str


@dataclass(frozen=True)
class Rollout:
    flags: dict[str, Any]  # each flag by its environment variable
    decision: RolloutDecision | None  # for the restaurant asked about

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.flags)
        if self.decision is not None:
            data["decision"] = asdict(self.decision)
        return data


def rollout(restaurant_id: str | None = None) -> Rollout:
    """The flags, and the decision for `restaurant_id` when one is given."""
    flags = load_flags()
    return Rollout(
        flags={
            "FEATURE_ASSIGNMENT_PIPELINE_V3": flags.v3,
            "FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW": flags.shadow,
            "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL": flags.max_parallel,
            "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT": flags.rollout_percent,
            "FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS": sorted(flags.restaurant_allowlist),
        },
        decision=decide(flags, restaurant_id) if restaurant_id else None,
    )


def decide(flags: Flags, restaurant_id: str) -> RolloutDecision:
    """The pipeline `flags` give a booking of `restaurant_id`, and why."""
    v3 = flags.v3_enabled_for(restaurant_id)
    bucket = rollout_bucket(restaurant_id)
    if not flags.v3:
        why = "FEATURE_ASSIGNMENT_PIPELINE_V3 is off"
    elif flags.restaurant_allowlist:
        why = "on the allowlist" if v3 else "not on the allowlist"
    else:
        why = f"bucket {bucket} {'<' if v3 else '>='} rollout {flags.rollout_percent}%"
    return RolloutDecision(
        restaurant_id=restaurant_id,
        pipeline=Pipeline.V3 if v3 else Pipeline.LEGACY,
        shadow=flags.shadow and not v3,
        max_parallel=flags.max_parallel,
        bucket=bucket,
        why=why,
    )
