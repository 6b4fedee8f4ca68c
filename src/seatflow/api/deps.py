"""What every route depends on: the app's engine, Temporal client and
settings (`Dep`), and the authenticated caller (`Caller`) with its role and
restaurants checked by `require`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from seatflow.api.auth import ApiToken, Role, authenticate
from seatflow.api.errors import ApiError
from seatflow.api.models import RESTAURANT_ID
from seatflow.config import Settings
from seatflow.domain.planning import EngineConfig


@dataclass
class Deps:
    settings: Settings
    tokens: list[ApiToken]
    engine: AsyncEngine
    client: Client
    config: EngineConfig


_bearer = HTTPBearer(auto_error=False, description="a token from SEATFLOW_API_TOKENS")


def deps(request: Request) -> Deps:
    found: Deps = request.app.state.deps
    return found


def token_of(tokens: list[ApiToken], authorization: str | None) -> ApiToken:
    """The token an `Authorization` header presents, or ApiError 401. Checked
    twice for a request with a body: by `guard.AuthFirst` before the body is
    read, and by `caller` for the route."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)")
    token = authenticate(tokens, presented.strip())
    if token is None:
        raise ApiError(401, "unauthorized", "invalid token")
    return token


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    presented = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
    return token_of(deps(request).tokens, presented)


Caller = Annotated[ApiToken, Depends(caller)]
Dep = Annotated[Deps, Depends(deps)]
RestaurantPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=RESTAURANT_ID, description="restaurant id")
]


def require(token: ApiToken, roles: tuple[Role, ...], restaurant_id: str | None) -> None:
    if token.role not in roles:
        raise ApiError(403, "forbidden",
                       f"a {token.role} token may not do this (needs {' or '.join(roles)})")
    if restaurant_id is not None and not token.may_use(restaurant_id):
        raise ApiError(403, "forbidden", f"this token is not for restaurant {restaurant_id}")


def require_booking(token: ApiToken, roles: tuple[Role, ...], view: dict[str, Any]) -> None:
    """A booking of a restaurant the token is not for answers exactly like a
    booking that does not exist (404): an id never confirms that it exists,
    nor names its restaurant, to another restaurant's client."""
    require(token, roles, None)
    if not token.may_use(view["restaurant_id"]):
        raise ApiError(404, "not_found", f"no booking {view['booking_id']}")


def actor_of(token: ApiToken) -> str:
    """Who the history names for what this token does: its name, never a body field."""
    return f"api:{token.name}"
