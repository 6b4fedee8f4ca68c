"""Running the HTTP API for tests: uvicorn on a free loopback port, in its own
thread and event loop, against the session's PostgreSQL and a Temporal server."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import uvicorn

from seatflow.api import create_app, parse_tokens
from seatflow.config import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tokens:
    host: str  # host for the test restaurant only
    host_all: str  # host for every restaurant
    other_host: str  # host for another restaurant
    operator: str
    other_operator: str  # operator for another restaurant

    def entries(self, restaurant: str) -> list[dict[str, Any]]:
        return [
            {"name": "host-r", "token": self.host, "role": "host", "restaurants": [restaurant]},
            {"name": "host-all", "token": self.host_all, "role": "host"},
            {"name": "host-other", "token": self.other_host, "role": "host",
             "restaurants": ["someone-else"]},
            {"name": "ops", "token": self.operator, "role": "operator"},
            {"name": "ops-other", "token": self.other_operator, "role": "operator",
             "restaurants": ["someone-else"]},
        ]


def new_tokens() -> Tokens:
    return Tokens(*(secrets.token_urlsafe(24) for _ in range(5)))


class ApiServer:
    """uvicorn serving `create_app` in a thread (its own loop, engine and client)."""

    def __init__(self, *, database_url: str, temporal_address: str, task_queue: str,
                 tokens_json: str, **env: str) -> None:
        # Tests make hundreds of requests a second on one token: the default
        # rate limit is lifted here (test_holds gives a token its own limit),
        # and engine work runs inline unless a test asks for the pool of
        # worker processes (test_holds does).
        env = {"SEATFLOW_API_RATE_LIMIT": "100000/second", "SEATFLOW_API_CPU_WORKERS": "0",
               **env}
        settings = load_settings(
            DATABASE_URL=database_url, TEMPORAL_ADDRESS=temporal_address,
            SEATFLOW_TASK_QUEUE=task_queue, **env,
        )
        self.app = create_app(settings, parse_tokens(tokens_json))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def temporal_address(env: Any) -> str:
    return str(env.client.service_client.config.target_host)


def tokens_json(tokens: Tokens, restaurant: str) -> str:
    return json.dumps(tokens.entries(restaurant))
