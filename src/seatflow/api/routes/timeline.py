"""`/v1/restaurants/{id}/timeline`: one local day of a restaurant as the floor
staff see it (the host page draws it)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from seatflow.api.deps import Caller, Dep, RestaurantPath, require
from seatflow.api.errors import AUTH_ERRORS, error_responses
from seatflow.api.models import Error, Timeline
from seatflow.service.timeline import day_timeline

router = APIRouter(tags=["timeline"])
DayQuery = Annotated[date | None, Query(
    alias="date", description="the local day (default: today on the restaurant's clock)")]


@router.get(
    "/v1/restaurants/{restaurant_id}/timeline",
    response_model=Timeline,
    responses={404: {"model": Error}, **error_responses(*AUTH_ERRORS)},
    summary="A day's tables, seated bookings, bookings waiting for a table, and holds",
)
async def timeline(restaurant_id: RestaurantPath, token: Caller, d: Dep,
                   day: DayQuery = None) -> dict[str, Any]:
    require(token, ("host", "operator"), restaurant_id)
    # InvalidBooking: unknown_restaurant 404, beyond_horizon 422 (errors.py).
    return await day_timeline(d.engine, restaurant_id, day,
                              horizon_days=d.settings.booking_horizon_days)
