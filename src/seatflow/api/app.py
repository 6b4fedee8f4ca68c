"""The FastAPI application: bookings, availability, the review queue, health.

Every route is a thin adapter over what the CLI uses: `create_booking` (the
booking and its intake row in one transaction, then the workflow start; the
intake relay covers a Temporal outage), `booking_view`, the `cancel_booking`
signal, `check_availability`, and the validated Update
`resolve_manual_review_update`. Every error is JSON `{"code", "message"}`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from seatflow.api.auth import ApiToken, Role, authenticate
from seatflow.api.models import (
    RESTAURANT_ID,
    AvailabilityModel,
    BookingCreated,
    BookingView,
    CancelBody,
    DecisionBody,
    DecisionResult,
    Error,
    Health,
    NewBookingBody,
    ReviewItem,
)
from seatflow.config import Settings
from seatflow.domain.planning import EngineConfig
from seatflow.domain.states import FINAL, TERMINAL, AssignmentState
from seatflow.logging import get_logger
from seatflow.storage.db import ping

log = get_logger("seatflow.api")

CANCEL_WAIT_SECONDS = 10.0
UPDATE_TIMEOUT_SECONDS = 20.0
HEALTH_TIMEOUT_SECONDS = 3.0
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Error} for s in statuses}


AUTH_ERRORS = (401, 403, 422, 503)


@dataclass
class Deps:
    settings: Settings
    tokens: list[ApiToken]
    engine: AsyncEngine
    client: Client
    config: EngineConfig


def create_app(
    settings: Settings,
    tokens: list[ApiToken],
    *,
    engine: AsyncEngine | None = None,
    client: Client | None = None,
) -> FastAPI:
    """The API. Without `engine`/`client`, they are made at start-up from
    `settings` (the Temporal client connects lazily: the API starts while
    Temporal is down, and bookings then wait for the intake relay)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        if engine is None:
            from seatflow.storage.db import make_engine
            from seatflow.storage.embedded import resolve_database_url

            db = make_engine(resolve_database_url(settings.database_url))
        else:
            db = engine
        temporal = client or await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
        )
        app.state.deps = Deps(settings, tokens, db, temporal, settings.engine_config())
        try:
            yield
        finally:
            if own_engine:
                await db.dispose()

    app = FastAPI(
        title="seatflow",
        version="1",
        description="Bookings, availability and manual review for host applications. "
        "Every request but /healthz needs `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    _routes(app)
    return app


# --------------------------------------------------------------- errors


def _body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message, **exc.extra), status_code=exc.status,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(_body("validation_error", "; ".join(problems) or "invalid request"),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that cannot be decoded: like malformed JSON
            return JSONResponse(_body("validation_error", f"body: {exc.detail}"),
                                status_code=422)
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                 403: "forbidden"}
        return JSONResponse(_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        from seatflow.breaker import is_infrastructure_error

        if is_infrastructure_error(exc):
            return JSONResponse(_body("unavailable", "the database is unavailable; retry later "
                                      "(with the same Idempotency-Key)"), status_code=503)
        log.error("api.unexpected_error", error_type=type(exc).__name__)
        return JSONResponse(_body("internal_error", "unexpected error; nothing was changed "
                                  "by this request unless it says otherwise"), status_code=500)


# ------------------------------------------------------------------ auth

_bearer = HTTPBearer(auto_error=False, description="a token from SEATFLOW_API_TOKENS")


def deps(request: Request) -> Deps:
    found: Deps = request.app.state.deps
    return found


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)")
    token = authenticate(deps(request).tokens, credentials.credentials)
    if token is None:
        raise ApiError(401, "unauthorized", "invalid token")
    return token


Caller = Annotated[ApiToken, Depends(caller)]
Dep = Annotated[Deps, Depends(deps)]


def require(token: ApiToken, roles: tuple[Role, ...], restaurant_id: str | None) -> None:
    if token.role not in roles:
        raise ApiError(403, "forbidden",
                       f"a {token.role} token may not do this (needs {' or '.join(roles)})")
    if restaurant_id is not None and not token.may_use(restaurant_id):
        raise ApiError(403, "forbidden", f"this token is not for restaurant {restaurant_id}")


async def _booking(d: Deps, booking_id: str) -> dict[str, Any]:
    from seatflow.intake.service import booking_view
    from seatflow.storage.transitions import BookingNotFound

    try:
        return await booking_view(d.engine, booking_id)
    except BookingNotFound:
        raise ApiError(404, "not_found", f"no booking {booking_id}") from None


# ---------------------------------------------------------------- routes

RestaurantPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=RESTAURANT_ID, description="restaurant id")
]
BookingPath = Annotated[UUID, Path(description="booking id")]


def _routes(app: FastAPI) -> None:
    @app.post(
        "/v1/restaurants/{restaurant_id}/bookings",
        status_code=201,
        response_model=BookingCreated,
        responses={200: {"model": BookingCreated,
                         "description": "a retry: the booking this Idempotency-Key created"},
                   404: {"model": Error}, 409: {"model": Error}, **_errors(*AUTH_ERRORS)},
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
        from seatflow.domain.intake import NewBooking
        from seatflow.domain.restaurant import InvalidBooking, parse_start
        from seatflow.intake.service import NotAvailable, create_booking
        from seatflow.storage.restaurants import load_policy

        require(token, ("host",), restaurant_id)
        async with d.engine.connect() as conn:
            policy = await load_policy(conn, restaurant_id)
        if policy is None:
            raise ApiError(404, "unknown_restaurant", f"unknown restaurant {restaurant_id!r}")
        try:
            start = parse_start(body.start, policy.timezone)
            created = await create_booking(
                d.engine, d.client,
                NewBooking(restaurant_id=restaurant_id, party_size=body.party_size, start=start,
                           zone_preference=body.zone_preference, guest_name=body.guest_name,
                           guest_email=body.guest_email, idempotency_key=idempotency_key),
                task_queue=d.settings.task_queue,
                require_availability=body.require_availability,
                engine_config=d.config,
            )
        except NotAvailable as exc:
            raise ApiError(409, exc.code, exc.message,
                           nearest=[t.isoformat() for t in exc.nearest]) from None
        except InvalidBooking as exc:
            status = {"idempotency_conflict": 409, "unknown_restaurant": 404}.get(exc.code, 422)
            raise ApiError(status, exc.code, exc.message) from None
        view = await _booking(d, created.booking_id)
        log.info("api.booking_created", booking_id=created.booking_id,
                 restaurant_id=restaurant_id, created=created.created, token=token.name)
        result = BookingCreated(
            booking_id=created.booking_id, workflow_id=created.workflow_id,
            workflow_started=created.workflow_started, created=created.created,
            assignment_state=view["assignment_state"],
        )
        return JSONResponse(result.model_dump(), status_code=201 if created.created else 200)

    @app.get(
        "/v1/bookings/{booking_id}",
        response_model=BookingView,
        responses={404: {"model": Error}, **_errors(*AUTH_ERRORS)},
        summary="A booking: state, tables, attempts, history, email",
    )
    async def show(booking_id: BookingPath, token: Caller, d: Dep) -> dict[str, Any]:
        require(token, ("host", "operator"), None)
        view = await _booking(d, str(booking_id))
        require(token, ("host", "operator"), view["restaurant_id"])
        return view

    @app.post(
        "/v1/bookings/{booking_id}/cancel",
        response_model=BookingView,
        responses={202: {"model": BookingView,
                         "description": "cancellation requested, not applied yet"},
                   404: {"model": Error}, 409: {"model": Error}, **_errors(*AUTH_ERRORS)},
        summary="Cancel a booking (releases its tables)",
    )
    async def cancel(
        booking_id: BookingPath, token: Caller, d: Dep,
        body: Annotated[CancelBody | None, Body()] = None,
    ) -> JSONResponse:
        from seatflow.domain.workflow_ids import booking_workflow_id
        from seatflow.intake.service import signal_cancel
        from seatflow.storage.lifecycle import cancel_booking

        require(token, ("host",), None)
        bid = str(booking_id)
        view = await _booking(d, bid)
        require(token, ("host",), view["restaurant_id"])
        if view["assignment_state"] in FINAL:
            raise ApiError(409, "already_resolved",
                           f"already resolved: {view['assignment_state']} "
                           f"({view['last_reason'] or 'no reason recorded'})")
        actor = f"api:{token.name}"
        reason = body.reason if body is not None else None
        handle = d.client.get_workflow_handle(booking_workflow_id(bid))
        # The workflow may close between the check and the signal (right after it
        # sends the confirmation): a signal refused for that is a database cancel.
        running = await _running(handle) and await signal_cancel(handle, actor, reason)
        if running:
            deadline = time.monotonic() + CANCEL_WAIT_SECONDS
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                view = await _booking(d, bid)
                if view["assignment_state"] == "cancelled":
                    return JSONResponse(view)
                if not await _running(handle):
                    # The workflow finished (say, right after its confirmation) without
                    # taking the signal: nothing else will move the booking, cancel it here.
                    running = False
                    break
            if running:
                return JSONResponse(view, status_code=202)
        await cancel_booking(d.engine, bid, actor=actor, reason=reason)
        return JSONResponse(await _booking(d, bid))

    @app.get(
        "/v1/restaurants/{restaurant_id}/availability",
        response_model=AvailabilityModel,
        responses={404: {"model": Error}, **_errors(*AUTH_ERRORS)},
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
        from seatflow.domain.restaurant import InvalidBooking
        from seatflow.service.availability import check_availability

        require(token, ("host", "operator"), restaurant_id)
        if day is not None and (window_from is not None or window_to is not None):
            raise ApiError(422, "bad_window", "give date, or from and to, not both")
        if day is None and (window_from is None or window_to is None):
            raise ApiError(422, "bad_window", "give date, or from and to")
        if day is not None and not date(1971, 1, 1) <= day <= date(9998, 12, 31):
            raise ApiError(422, "bad_window", f"date {day} is out of range")
        window = None if day is not None else (window_from, window_to)
        try:
            found = await check_availability(
                d.engine, restaurant_id, party, day=day, window=window,  # type: ignore[arg-type]
                config=d.config,
            )
        except InvalidBooking as exc:
            raise ApiError(404 if exc.code == "unknown_restaurant" else 422,
                           exc.code, exc.message) from None
        except (OverflowError, ValueError) as exc:
            raise ApiError(422, "bad_window", f"window out of range: {exc}") from None
        return found.to_dict()

    @app.get(
        "/v1/review",
        response_model=list[ReviewItem],
        responses=_errors(*AUTH_ERRORS),
        summary="The manual-review queue (operator)",
    )
    async def review_list(
        token: Caller, d: Dep,
        restaurant: Annotated[str | None, Query(
            min_length=1, max_length=64, pattern=RESTAURANT_ID)] = None,
    ) -> list[dict[str, Any]]:
        from seatflow.cli.review import review_queue

        require(token, ("operator",), restaurant)
        rows = await review_queue(d.engine, restaurant)
        return [r for r in rows if token.may_use(r["restaurant_id"])]

    @app.post(
        "/v1/bookings/{booking_id}/review",
        response_model=DecisionResult,
        responses={404: {"model": Error}, 409: {"model": Error}, **_errors(*AUTH_ERRORS)},
        summary="An operator's decision on a manual-review booking (the validated Update)",
    )
    async def review_decide(
        booking_id: BookingPath, body: Annotated[DecisionBody, Body()], token: Caller, d: Dep,
    ) -> dict[str, Any]:
        require(token, ("operator",), None)
        bid = str(booking_id)
        view = await _booking(d, bid)
        require(token, ("operator",), view["restaurant_id"])
        return await _decide(d, bid, body)

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}},
             summary="Database and Temporal reachable")
    async def healthz(d: Dep) -> JSONResponse:
        database = await _probe(lambda: ping(d.engine))
        temporal = await _probe(lambda: d.client.service_client.check_health())
        ok = database == "ok" and temporal == "ok"
        body = Health(status="ok" if ok else "degraded", database=database, temporal=temporal)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


async def _running(handle: Any) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    try:
        return bool((await handle.describe()).status == WorkflowExecutionStatus.RUNNING)
    except Exception:  # noqa: BLE001 - no workflow (or Temporal down): cancel in the database
        return False


async def _probe(check: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(check(), HEALTH_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"unreachable: no answer within {HEALTH_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return f"unreachable: {type(exc).__name__}"
    return "ok"


async def _decide(d: Deps, booking_id: str, body: DecisionBody) -> dict[str, Any]:
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    from seatflow.domain.review import InvalidDecision, parse_decision
    from seatflow.domain.workflow_ids import booking_workflow_id

    payload = body.model_dump(exclude_none=True)
    try:
        parse_decision(payload)  # the same check as the workflow's validator, first
    except InvalidDecision as exc:
        raise ApiError(422, "invalid_decision", str(exc)) from None
    view = await _booking(d, booking_id)
    state = view["assignment_state"]
    if state != AssignmentState.MANUAL_REVIEW:  # the validator would refuse it too; answer now
        if state in TERMINAL:
            raise ApiError(409, "already_resolved", f"already resolved: {state} "
                           f"({view['last_reason'] or 'no reason recorded'})")
        raise ApiError(409, "not_in_manual_review",
                       f"booking {booking_id} is {state}, not in manual_review")
    handle = d.client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        result = await asyncio.wait_for(
            handle.execute_update("resolve_manual_review_update", payload),
            UPDATE_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        raise ApiError(503, "timeout", f"no worker answered within {UPDATE_TIMEOUT_SECONDS:g} s; "
                       "nothing was decided, retry later") from None
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause or exc)
        kind = getattr(cause, "type", None)
        if "not in manual_review" in message:
            raise ApiError(409, "not_in_manual_review", message) from None
        if kind == "AssignmentRefused":
            raise ApiError(409, "assignment_refused", message) from None
        raise ApiError(422, "decision_refused", message) from None
    except RPCError as exc:
        view = await _booking(d, booking_id)
        state = view["assignment_state"]
        if state != "manual_review":
            raise ApiError(409, "already_resolved",
                           f"already resolved: {state} "
                           f"({view['last_reason'] or 'no reason recorded'})") from None
        raise ApiError(409, "no_workflow",
                       f"booking {booking_id} has no open workflow ({exc.message})") from None
    if not isinstance(result, dict):
        result = dict(vars(result))
    result["tables"] = list(result.get("tables") or [])
    return result

