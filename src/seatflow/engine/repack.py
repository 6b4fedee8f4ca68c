"""Re-packing (placeholder until the full search lands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from seatflow.domain.planning import BookingRequest, EngineConfig, Move, Plan

from .floor import Floor


@dataclass(frozen=True)
class Repacked:
    plan: Plan
    moves: tuple[Move, ...]
    evaluated: int
    truncated: bool


def repack(
    floor: Floor, request: BookingRequest, config: EngineConfig, *, now: datetime | None
) -> Repacked | None:
    return None
