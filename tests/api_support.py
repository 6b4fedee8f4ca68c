"""Running the HTTP API for tests: uvicorn on a free loopback port, in its own
thread and event loop, against the session's PostgreSQL and a Temporal server."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import httpx
import uvicorn

from seatflow.api.app import create_app
from seatflow.api.auth import parse_tokens
from seatflow.config import load_settings

START_SECONDS = 120  # an API server start, at most


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
        # generous: on a busy 2-core box the start (its CPU worker process
        # importing the engine among it) took over 30 s once
        deadline = time.monotonic() + START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server's thread ended during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start within {START_SECONDS} s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def temporal_address(env: Any) -> str:
    return str(env.client.service_client.config.target_host)


def tokens_json(tokens: Tokens, restaurant: str) -> str:
    return json.dumps(tokens.entries(restaurant))


async def as_told(send: Callable[[], Awaitable[httpx.Response]], *,
                  tries: int = 60) -> httpx.Response:
    """`send()` as a well-behaved host application sends it: a 503 `busy`
    (no engine worker free within the API's bounded wait, the shedding a busy
    machine is meant to see) is sent again after its Retry-After. Any other
    answer is returned; so is the last `busy` after `tries`."""
    for _ in range(tries - 1):
        r = await send()
        if r.status_code != 503 or r.json().get("code") != "busy":
            return r
        await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0))
    return await send()
