"""Before any route reads a request body: the caller is authenticated, held
to its rate limit, and the body is bounded while it is read.

FastAPI reads and parses a body before it resolves a route's dependencies, so
the bearer check of `deps.caller` alone would come after any client had made
the API read, decode and validate whatever it sent. `BodyGuard` checks the
token of every request that may carry a body before the route is called
(401 without reading the body), refuses a declared Content-Length over
MAX_BODY_BYTES at once, and counts the bytes as the route reads them: 413
`payload_too_large` at the first chunk past the limit, before any parsing.
Every request with a valid token (a body or not) counts against the token's
rate limit (api/ratelimit.py): past it, 429 `rate_limited` with Retry-After
and nothing else is done. The 429 is answered after a pause (`PACE_SECONDS`,
at most the Retry-After): a client that waits as it is told loses nothing,
and one that ignores it and asks again at once can no longer make the API
answer refusals as fast as it can send them, each one a turn of the event
loop that every other client's request waits behind (`bench/api.py`). At most
`PACED_PER_TOKEN` answers of one token wait at once; beyond, they are given
at once. A request without a valid token and no body goes on to its route,
which answers 401 (or, for /healthz, needs none)."""

from __future__ import annotations

import asyncio
from collections import Counter

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seatflow.api.auth import ApiToken
from seatflow.api.deps import token_of
from seatflow.api.errors import MAX_BODY_BYTES, ApiError, json_error
from seatflow.api.ratelimit import RateLimits
from seatflow.service import cpu

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PACE_SECONDS = 1.0
PACED_PER_TOKEN = 64


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI lets an HTTPException met while reading
    a body through as it is (errors.py answers it: 413 payload_too_large)."""

    def __init__(self) -> None:
        super().__init__(413, "payload too large")


class BodyGuard:
    """ASGI middleware: authentication before the body, and a bounded body."""

    def __init__(self, app: ASGIApp, tokens: list[ApiToken], limit: int = MAX_BODY_BYTES,
                 rates: RateLimits | None = None) -> None:
        self.app = app
        self.tokens = tokens
        self.limit = limit
        self.rates = rates
        self.paced: Counter[str] = Counter()  # 429s waiting to be answered, by token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            token = token_of(self.tokens, headers.get("authorization"))
        except ApiError as refused:
            if scope["method"] not in BODY_METHODS:
                await self.app(scope, receive, send)  # the route answers (401, or /healthz)
                return
            await json_error(refused.status, refused.code, refused.message)(scope, receive, send)
            return
        wait = None if self.rates is None else self.rates.hit(token)
        if wait is not None:
            await self.pace(token.name, wait)
            await json_error(429, "rate_limited", f"too many requests for this token; retry "
                             f"after {wait} s", headers={"Retry-After": str(wait)})(
                scope, receive, send)
            return
        cpu.client.set(token.name)  # this request's engine work takes its client's turn
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await json_error(413, "payload_too_large", too_large(self.limit))(
                scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, bounded, send)


    async def pace(self, token: str, wait: int) -> None:
        if self.paced[token] >= PACED_PER_TOKEN:
            return
        self.paced[token] += 1
        try:
            await asyncio.sleep(min(PACE_SECONDS, wait))
        finally:
            self.paced[token] -= 1


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit // 1024} KiB"
