"""`/v1/restaurants/{id}/holds`: hold an offered time's tables while the guest
fills in the form (then `POST .../bookings` with `hold_id`), list the token's
live holds, or release one."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.responses import JSONResponse

from seatflow.api.deps import Caller, Dep, RestaurantPath, require
from seatflow.api.errors import AUTH_ERRORS, BODY_ERRORS, error_responses
from seatflow.api.models import Error, HoldBody, HoldModel
from seatflow.api.routes.bookings import link
from seatflow.service.holds import hold_dict, list_holds, release_hold, request_hold

router = APIRouter(tags=["holds"])

SAME = "$request.path.restaurant_id"  # the restaurant the hold was made at
HOLD_LINKS = {
    "release": link("/v1/restaurants/{restaurant_id}/holds/{hold_id}", "delete",
                    "release the hold", hold_id="$response.body#/hold_id", restaurant_id=SAME),
    "list": link("/v1/restaurants/{restaurant_id}/holds", "get", "the token's live holds",
                 restaurant_id=SAME),
    "book": link("/v1/restaurants/{restaurant_id}/bookings", "post",
                 "book on the hold: its hold_id, party_size and start",
                 request_body={"hold_id": "$response.body#/hold_id",
                               "party_size": "$response.body#/party_size",
                               "start": "$response.body#/start"}, restaurant_id=SAME),
}


@router.post(
    "/v1/restaurants/{restaurant_id}/holds",
    status_code=201,
    response_model=HoldModel,
    responses={201: {"links": HOLD_LINKS},
               404: {"model": Error}, 409: {"model": Error,
               "description": "not_available (with `nearest`) or hold_limit"},
               **error_responses(*BODY_ERRORS)},
    summary="Hold the tables of a time for a few minutes (a slot lock)",
)
async def create_hold(restaurant_id: RestaurantPath, body: Annotated[HoldBody, Body()],
                      token: Caller, d: Dep) -> JSONResponse:
    require(token, ("host",), restaurant_id)
    hold = await request_hold(
        d.engine, restaurant_id, token.name, party_size=body.party_size, start=body.start,
        config=d.config, ttl_seconds=d.settings.hold_minutes * 60,
        max_per_holder=d.settings.hold_max_per_token,
        horizon_days=d.settings.booking_horizon_days)
    return JSONResponse(HoldModel(**hold_dict(hold)).model_dump(), status_code=201)


@router.delete(
    "/v1/restaurants/{restaurant_id}/holds/{hold_id}",
    status_code=204,
    responses={404: {"model": Error}, 409: {"model": Error, "description": "hold_used"},
               **error_responses(*BODY_ERRORS)},
    summary="Release a hold now",
)
async def delete_hold(restaurant_id: RestaurantPath,
                      hold_id: Annotated[UUID, Path(description="hold id")],
                      token: Caller, d: Dep) -> Response:
    require(token, ("host",), restaurant_id)
    await release_hold(d.engine, restaurant_id, token.name, str(hold_id))
    return Response(status_code=204)


@router.get(
    "/v1/restaurants/{restaurant_id}/holds",
    response_model=list[HoldModel],
    responses={404: {"model": Error}, **error_responses(*AUTH_ERRORS)},
    summary="This token's live holds at the restaurant, by start",
)
async def get_holds(restaurant_id: RestaurantPath, token: Caller, d: Dep,
                    day: Annotated[date | None, Query(
                        alias="date", description="only those meeting this local day "
                        "(default: every live hold)")] = None) -> list[dict[str, Any]]:
    require(token, ("host",), restaurant_id)
    # InvalidBooking: unknown_restaurant 404, beyond_horizon 422 (errors.py).
    found = await list_holds(d.engine, restaurant_id, day=day, holder=token.name,
                             horizon_days=d.settings.booking_horizon_days)
    return [hold_dict(h) for h in found]
