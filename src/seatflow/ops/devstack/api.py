"""The HTTP API (`python -m seatflow.api.server`) on 127.0.0.1: started by
`up` with the configured tokens or a host and an operator token made for the
dev stack (var/api-tokens.json), reported by `status` with its URL."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import replace

from seatflow.ops.devstack.model import Component, DevStackError
from seatflow.ops.devstack.plan import Plan, env_int, stack_settings
from seatflow.ops.devstack.probes import port_open
from seatflow.ops.devstack.records import (
    Paths,
    live_process,
    process_component,
    read_json,
    relative,
    spawn,
)

API = "api"
API_MODULE = "seatflow.api.server"
# Default API port: 8000 next to Temporal's default 7233 (a stack on another
# Temporal port gets its own API port).
API_PORT_OFFSET = 767


def dev_api_tokens(paths: Paths) -> str:
    """SEATFLOW_API_TOKENS when set; otherwise a host and an operator token for
    every restaurant, made once and kept in var/api-tokens.json (mode 0600)."""
    configured = os.environ.get("SEATFLOW_API_TOKENS") or stack_settings(paths).api_tokens
    if configured:
        return configured
    if not paths.api_tokens.exists():
        import secrets

        tokens = [
            {"name": "dev-host", "token": secrets.token_urlsafe(24), "role": "host",
             "restaurants": ["*"]},
            {"name": "dev-operator", "token": secrets.token_urlsafe(24), "role": "operator",
             "restaurants": ["*"]},
        ]
        fd = os.open(paths.api_tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(tokens, out, indent=2)
    return paths.api_tokens.read_text()


def up_api(paths: Paths, plan: Plan, env: Mapping[str, str], api_port: int | None) -> None:
    """The HTTP API (`python -m seatflow.api.server`) on 127.0.0.1."""
    if live_process(read_json(paths.record(API))) is not None:
        return
    port = api_port or env_int("SEATFLOW_DEV_API_PORT") or plan.temporal_port + API_PORT_OFFSET
    if port_open("127.0.0.1", port):
        raise DevStackError(f"the API port {port} is in use; choose another with --api-port "
                            "or SEATFLOW_DEV_API_PORT")
    own = {"SEATFLOW_API_ADDRESS": f"127.0.0.1:{port}"}
    # The tokens reach the process through its environment only: never the record.
    child_env = {**env, **own, "SEATFLOW_API_TOKENS": dev_api_tokens(paths)}
    spawn(API, [sys.executable, "-m", API_MODULE], paths, child_env, env_overrides=own,
          extra={"url": f"http://127.0.0.1:{port}"})


def api_component(paths: Paths) -> tuple[Component | None, str | None]:
    """The API as `status` reports it, and its URL while it runs; (None, None)
    when `up` never started one."""
    api = read_json(paths.record(API))
    if not api:
        return None, None
    found = process_component(paths, api)
    api_url = None
    if found.state == "running":
        api_url = str(api.get("url"))
        tokens = ("tokens from SEATFLOW_API_TOKENS" if not paths.api_tokens.exists()
                  else f"tokens in {relative(paths.api_tokens, paths)}")
        found = replace(found, address=api_url, detail=f"{api_url}, {tokens}")
    return found, api_url
