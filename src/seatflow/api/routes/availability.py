"""`/v1/restaurants/{id}/availability`: start times with a valid table plan now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from seatflow.api.deps import Caller, Dep, RestaurantPath, require
from seatflow.api.errors import AUTH_ERRORS, ApiError, error_responses
from seatflow.api.models import AvailabilityModel, Error
from seatflow.service.availability import check_availability

router = APIRouter(tags=["availability"])


@router.get(
    "/v1/restaurants/{restaurant_id}/availability",
    response_model=AvailabilityModel,
    responses={404: {"model": Error}, **error_responses(*AUTH_ERRORS)},
    summary="Start times with a valid table plan now, for one party size",
)
async def availability(
    restaurant_id: RestaurantPath,
    token: Caller,
    d: Dep,
    party: Annotated[int, Query(ge=1, le=1000, description="party size")],
    day: Annotated[date | None, Query(alias="date", description="local date")] = None,
    window_from: Annotated[datetime | None, Query(
        alias="from", description="window start (local if no offset)")] = None,
    window_to: Annotated[datetime | None, Query(
        alias="to", description="window end (local if no offset)")] = None,
) -> dict[str, Any]:
    require(token, ("host", "operator"), restaurant_id)
    if day is not None and (window_from is not None or window_to is not None):
        raise ApiError(422, "bad_window", "give date, or from and to, not both")
    if day is None and (window_from is None or window_to is None):
        raise ApiError(422, "bad_window", "give date, or from and to")
    window = None if day is not None else (window_from, window_to)
    # InvalidBooking: unknown_restaurant 404, the others (a date past the
    # booking horizon or before yesterday included) 422 (errors.py).
    found = await check_availability(
        d.engine, restaurant_id, party, day=day, window=window,  # type: ignore[arg-type]
        config=d.config, horizon_days=d.settings.booking_horizon_days,
    )
    return found.to_dict()
