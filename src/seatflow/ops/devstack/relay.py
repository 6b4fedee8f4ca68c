"""The intake relay (`python -m seatflow.intake.relay`): started by `up`,
reported by `status`."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from seatflow.ops.devstack.model import Component
from seatflow.ops.devstack.records import (
    Paths,
    live_process,
    process_component,
    read_json,
    spawn,
)

INTAKE_RELAY_MODULE = "seatflow.intake.relay"
INTAKE_RELAY = "intake-relay"


def up_intake_relay(paths: Paths, env: Mapping[str, str], overrides: Mapping[str, str]) -> None:
    """Start the intake relay unless its recorded process still runs."""
    if live_process(read_json(paths.record(INTAKE_RELAY))) is not None:
        return
    spawn(INTAKE_RELAY, [sys.executable, "-m", INTAKE_RELAY_MODULE], paths,
          {**env, **overrides}, env_overrides=dict(overrides), extra={})


def relay_component(paths: Paths) -> Component | None:
    """The relay as `status` reports it; None when `up` never started one."""
    relay = read_json(paths.record(INTAKE_RELAY))
    return process_component(paths, relay) if relay else None
