"""The HTTP API for host applications (`seatflow api`): see docs/api.md."""

from __future__ import annotations

from seatflow.api.app import create_app
from seatflow.api.auth import ApiToken, authenticate, parse_tokens

__all__ = ["ApiToken", "authenticate", "create_app", "parse_tokens"]
