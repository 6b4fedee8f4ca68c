"""`/v1/restaurants/{id}/bookings` and `/v1/bookings/{id}`: create, show, cancel,
resend a guest message."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path
from fastapi.responses import JSONResponse

from seatflow.api.deps import Caller, Dep, RestaurantPath, actor_of, require, require_booking
from seatflow.api.errors import AUTH_ERRORS, BODY_ERRORS, error_responses
from seatflow.api.models import (
    BookingCreated,
    BookingView,
    CancelBody,
    Error,
    NewBookingBody,
    ResendBody,
    ResentEmail,
)
from seatflow.logging import get_logger
from seatflow.service.bookings import (
    CancelPending,
    booking_view,
    cancel_booking_request,
    request_booking,
)
from seatflow.service.guest_mail import resend_email

log = get_logger("seatflow.api")
router = APIRouter(tags=["bookings"])

CANCEL_WAIT_SECONDS = 10.0
RESEND_WAIT_SECONDS = 10.0
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"
BookingPath = Annotated[UUID, Path(description="booking id")]


def link(path: str, method: str, description: str, *,
         request_body: dict[str, Any] | None = None, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link from an answer to the operation it enables (clients,
    and the stateful schema tests, follow them): path parameters, and body
    fields, taken from the answer or its request by runtime expressions."""
    ref = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
    found: dict[str, Any] = {"operationRef": ref, "description": description,
                             "parameters": parameters}
    if request_body is not None:
        found["requestBody"] = request_body
    return found


MADE = "$response.body#/booking_id"  # the booking the answer names
BOOKING_LINKS = {
    "show": link("/v1/bookings/{booking_id}", "get", "the booking made", booking_id=MADE),
    "cancel": link("/v1/bookings/{booking_id}/cancel", "post", "cancel it", booking_id=MADE),
    "review": link("/v1/bookings/{booking_id}/review", "post", "decide on it in review",
                   booking_id=MADE),
    "resend": link("/v1/bookings/{booking_id}/emails/resend", "post", "send a message again",
                   booking_id=MADE),
}


@router.post(
    "/v1/restaurants/{restaurant_id}/bookings",
    status_code=201,
    response_model=BookingCreated,
    responses={201: {"links": BOOKING_LINKS},
               200: {"model": BookingCreated, "links": BOOKING_LINKS,
                     "description": "a retry: the booking this Idempotency-Key created"},
               404: {"model": Error}, 409: {"model": Error}, **error_responses(*BODY_ERRORS)},
    summary="Create a booking (retry-safe with Idempotency-Key)",
)
async def create(
    restaurant_id: RestaurantPath,
    body: Annotated[NewBookingBody, Body()],
    token: Caller,
    d: Dep,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY,
        description="retries with the same key return the same booking")] = None,
) -> JSONResponse:
    require(token, ("host",), restaurant_id)
    created = await request_booking(
        d.engine, d.client, restaurant_id, party_size=body.party_size, start=body.start,
        zone_preference=body.zone_preference, guest_name=body.guest_name,
        guest_email=body.guest_email, idempotency_key=idempotency_key,
        hold_id=body.hold_id, holder=token.name,
        require_availability=body.require_availability, task_queue=d.settings.task_queue,
        engine_config=d.config, horizon_days=d.settings.booking_horizon_days,
    )
    log.info("api.booking_created", booking_id=created.booking_id,
             restaurant_id=restaurant_id, created=created.created, token=token.name)
    result = BookingCreated(
        booking_id=created.booking_id, workflow_id=created.workflow_id,
        workflow_started=created.workflow_started, created=created.created,
        assignment_state=created.assignment_state or "created",
    )
    return JSONResponse(result.model_dump(), status_code=201 if created.created else 200)


@router.get(
    "/v1/bookings/{booking_id}",
    response_model=BookingView,
    responses={404: {"model": Error}, **error_responses(*AUTH_ERRORS)},
    summary="A booking: state, tables, attempts, history, email",
)
async def show(booking_id: BookingPath, token: Caller, d: Dep) -> dict[str, Any]:
    require(token, ("host", "operator"), None)
    view = await booking_view(d.engine, str(booking_id))
    require_booking(token, ("host", "operator"), view)
    return view


@router.post(
    "/v1/bookings/{booking_id}/cancel",
    response_model=BookingView,
    responses={202: {"model": BookingView,
                     "description": "cancellation requested, not applied yet"},
               404: {"model": Error}, 409: {"model": Error}, **error_responses(*BODY_ERRORS)},
    summary="Cancel a booking (releases its tables)",
)
async def cancel(
    booking_id: BookingPath, token: Caller, d: Dep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> JSONResponse:
    require(token, ("host",), None)
    bid = str(booking_id)
    view = await booking_view(d.engine, bid)
    require_booking(token, ("host",), view)
    try:
        view = await cancel_booking_request(
            d.engine, d.client, bid, actor=actor_of(token),
            reason=body.reason if body is not None else None, wait_seconds=CANCEL_WAIT_SECONDS,
            task_queue=d.settings.task_queue)
    except CancelPending as pending:
        return JSONResponse(pending.view, status_code=202)
    return JSONResponse(view)


@router.post(
    "/v1/bookings/{booking_id}/emails/resend",
    response_model=ResentEmail,
    responses={202: {"model": ResentEmail,
                     "description": "sending: not finished after 10 s, it retries by itself"},
               404: {"model": Error}, 409: {"model": Error}, **error_responses(*BODY_ERRORS)},
    summary="Send a failed guest message again (operator)",
)
async def resend(
    booking_id: BookingPath, token: Caller, d: Dep,
    body: Annotated[ResendBody | None, Body()] = None,
) -> JSONResponse:
    require(token, ("operator",), None)
    bid = str(booking_id)
    require_booking(token, ("operator",), await booking_view(d.engine, bid))
    kind = body.kind if body is not None else "confirmation"
    done = await resend_email(d.engine, d.client, bid, kind, actor=actor_of(token),
                              task_queue=d.settings.task_queue,
                              wait_seconds=RESEND_WAIT_SECONDS)
    log.info("api.email_resend", booking_id=bid, kind=kind, outcome=done.outcome,
             token=token.name)
    result = ResentEmail(booking_id=done.booking_id, kind=done.kind,
                         workflow_id=done.workflow_id, outcome=done.outcome, reason=done.reason)
    return JSONResponse(result.model_dump(), status_code=202 if done.outcome == "sending" else 200)
