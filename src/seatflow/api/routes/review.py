"""`/v1/review` and `/v1/bookings/{id}/review`: the manual-review queue and an
operator's decision (the actor is the token's identity)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from seatflow.api.deps import Caller, Dep, actor_of, require, require_booking
from seatflow.api.errors import AUTH_ERRORS, BODY_ERRORS, error_responses
from seatflow.api.models import RESTAURANT_ID, DecisionBody, DecisionResult, Error, ReviewItem
from seatflow.api.routes.bookings import BookingPath
from seatflow.service.bookings import booking_view
from seatflow.service.review import resolve_manual_review, review_queue

router = APIRouter(tags=["review"])


@router.get(
    "/v1/review",
    response_model=list[ReviewItem],
    responses=error_responses(*AUTH_ERRORS),
    summary="The manual-review queue (operator)",
)
async def review_list(
    token: Caller, d: Dep,
    restaurant: Annotated[str | None, Query(
        min_length=1, max_length=64, pattern=RESTAURANT_ID)] = None,
) -> list[dict[str, Any]]:
    require(token, ("operator",), restaurant)
    rows = await review_queue(d.engine, restaurant)
    return [r for r in rows if token.may_use(r["restaurant_id"])]


@router.post(
    "/v1/bookings/{booking_id}/review",
    response_model=DecisionResult,
    responses={404: {"model": Error}, 409: {"model": Error}, **error_responses(*BODY_ERRORS)},
    summary="An operator's decision on a manual-review booking (the validated Update)",
)
async def review_decide(
    booking_id: BookingPath, body: Annotated[DecisionBody, Body()], token: Caller, d: Dep,
) -> dict[str, Any]:
    require(token, ("operator",), None)
    bid = str(booking_id)
    view = await booking_view(d.engine, bid)
    require_booking(token, ("operator",), view)
    decision = body.model_dump(exclude_none=True)
    if not body.force:
        del decision["force"]  # retry and reject take no force
    return await resolve_manual_review(d.engine, d.client, bid, decision, actor=actor_of(token))
