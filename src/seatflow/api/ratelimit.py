"""Per-token rate limits (the `limits` library, a moving window in memory):
each token's `rate_limit` from SEATFLOW_API_TOKENS, else the configured
default (SEATFLOW_API_RATE_LIMIT). A request past its token's limit is
answered 429 `rate_limited` with `Retry-After` (seconds), before its body is
read or any work is done (api/guard.py); the other tokens are not slowed.
The window is per API process."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from seatflow.api.auth import ApiToken


class RateLimits:
    def __init__(self, default: str) -> None:
        self.default = parse_many(default)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self._parsed: dict[str, list[RateLimitItem]] = {}

    def _items(self, token: ApiToken) -> list[RateLimitItem]:
        if token.rate_limit is None:
            return self.default
        items = self._parsed.get(token.rate_limit)
        if items is None:
            items = self._parsed[token.rate_limit] = parse_many(token.rate_limit)
        return items

    def hit(self, token: ApiToken) -> int | None:
        """Count one request of `token`: None when it is within its limits,
        else the whole seconds to wait before one is again (at least 1).
        A refused request is not counted."""
        items = self._items(token)
        for item in items:
            if not self.limiter.test(item, token.name):
                reset = self.limiter.get_window_stats(item, token.name).reset_time
                return max(1, math.ceil(reset - time.time()))
        for item in items:
            self.limiter.hit(item, token.name)
        return None
