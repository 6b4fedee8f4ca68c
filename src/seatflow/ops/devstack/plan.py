"""Where each piece of the stack lives, resolved from the options, the
environment and the project's .env (an embedded or an external database, a
local or an external Temporal, their ports), and the environment that tells
the processes `dev up` starts where to find them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from seatflow.config import Settings, load_settings
from seatflow.ops.devstack.model import DevStackError
from seatflow.ops.devstack.records import Paths

DEFAULT_TEMPORAL_PORT = 7233
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class Plan:
    """Where each piece lives, resolved from options, environment and .env."""

    settings: Settings
    external_db: str | None
    temporal_port: int
    ui_port: int
    external_temporal: bool

    @property
    def temporal_address(self) -> str:
        if self.external_temporal:
            return self.settings.temporal_address
        return f"localhost:{self.temporal_port}"


def stack_settings(paths: Paths) -> Settings:
    return load_settings(_env_file=paths.home / ".env")


def make_plan(paths: Paths, temporal_port: int | None, ui_port: int | None) -> Plan:
    settings = stack_settings(paths)
    host, _, port_text = settings.temporal_address.rpartition(":")
    address_set = "temporal_address" in settings.model_fields_set
    external = address_set and host not in LOOPBACK_HOSTS
    port = temporal_port or env_int("SEATFLOW_DEV_TEMPORAL_PORT")
    if port is None:
        port = int(port_text) if address_set and not external and port_text.isdigit() \
            else DEFAULT_TEMPORAL_PORT
    ui = ui_port or env_int("SEATFLOW_DEV_UI_PORT") or port + 1000
    return Plan(settings=settings, external_db=settings.database_url, temporal_port=port,
                ui_port=ui, external_temporal=external)


def env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DevStackError(f"{name}={value!r} is not a port number") from None


def child_env(paths: Paths, plan: Plan, database_url: str) -> dict[str, str]:
    """The environment of every seatflow process `dev up` starts (workers, relay, API)."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": plan.temporal_address,
        "TEMPORAL_NAMESPACE": plan.settings.temporal_namespace,
        "SEATFLOW_TASK_QUEUE": plan.settings.task_queue,
        "SEATFLOW_HOME": str(paths.home),
        "PYTHONUNBUFFERED": "1",
    })
    # People read the dev stack's logs: console lines unless JSON was asked for.
    env.setdefault("SEATFLOW_LOG_FORMAT", "console")
    return env
