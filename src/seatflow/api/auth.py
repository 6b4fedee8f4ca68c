"""Bearer-token authentication for the HTTP API.

Tokens come from configuration, `SEATFLOW_API_TOKENS`: a JSON list of
`{"name": ..., "token": ..., "role": "host" | "operator", "restaurants": [...]}`
(`["*"]`, the default, means every restaurant) and an optional `"rate_limit"`
(e.g. `"20/second;600/minute"`; without it, SEATFLOW_API_RATE_LIMIT applies:
api/ratelimit.py). A `host` token creates, shows
and cancels bookings and asks availability for its restaurants; an `operator`
token works the manual-review queue (and may read bookings and availability).

Tokens are compared in constant time (HMAC digests, every configured token
checked), and no token is ever logged or put in an error message: a bad
configuration names the entry by position and name only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from seatflow.config import ConfigError

Role = Literal["host", "operator"]
ALL = "*"
MIN_TOKEN_LENGTH = 16
VARIABLE = "SEATFLOW_API_TOKENS"


class _TokenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")
    token: str = Field(min_length=MIN_TOKEN_LENGTH, max_length=512, repr=False)
    role: Role
    restaurants: list[str] = Field(default_factory=lambda: [ALL], min_length=1)
    rate_limit: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_many(v)
            except ValueError:
                raise ValueError("must be rate limits such as 20/second;600/minute") from None
        return v


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: Role
    restaurants: frozenset[str]
    digest: bytes  # sha256 of the token: what is compared, never the token itself
    rate_limit: str | None = None  # None: the configured default (api/ratelimit.py)

    def __repr__(self) -> str:  # never show the digest either
        return f"ApiToken(name={self.name!r}, role={self.role!r})"

    def may_use(self, restaurant_id: str) -> bool:
        return ALL in self.restaurants or restaurant_id in self.restaurants


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def parse_tokens(raw: str) -> list[ApiToken]:
    """Parse the configured tokens; raises ConfigError naming the variable and
    the entry (by position and name), never the token."""
    if not raw.strip():
        return []
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{VARIABLE} must be a JSON list of token entries") from None
    if not isinstance(data, list):
        raise ConfigError(f"{VARIABLE} must be a JSON list of token entries")
    tokens: list[ApiToken] = []
    for i, entry in enumerate(data):
        label = f"{VARIABLE}[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']})"
        try:
            spec = _TokenSpec.model_validate(entry)
        except ValidationError as exc:
            fields = ", ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            raise ConfigError(f"{label}: {fields}") from None
        tokens.append(ApiToken(spec.name, spec.role, frozenset(spec.restaurants),
                               _digest(spec.token), spec.rate_limit))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise ConfigError(f"{VARIABLE}: token names must be unique")
    digests = [t.digest for t in tokens]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{VARIABLE}: two entries share one token")
    return tokens


def authenticate(tokens: list[ApiToken], presented: str) -> ApiToken | None:
    """The configured token equal to `presented`, compared in constant time:
    every entry is compared, whichever matches."""
    digest = _digest(presented)
    found: ApiToken | None = None
    for token in tokens:
        if hmac.compare_digest(token.digest, digest):
            found = token
    return found
