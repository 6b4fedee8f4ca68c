"""The API's errors: every one is JSON `{"code", "message"}` (plus `nearest`
for `not_available`). The service's refusals and lookups map onto HTTP
statuses here, once, so a route only calls the service and renders."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from seatflow.api.models import Error
from seatflow.domain.restaurant import InvalidBooking
from seatflow.logging import get_logger
from seatflow.service.bookings import (
    AlreadyResolved,
    BookingActionRefused,
    BookingNotFound,
    NotAvailable,
)
from seatflow.service.cpu import CpuBusy

log = get_logger("seatflow.api")

# 429: the token's rate limit (api/ratelimit.py); 503: also no engine worker free
AUTH_ERRORS = (401, 403, 422, 429, 503)
BODY_ERRORS = (*AUTH_ERRORS, 413)  # a route that takes a body: also too large
# The largest request body read (api/guard.py): 413 payload_too_large past it.
MAX_BODY_BYTES = 64 * 1024
# A refusal's code -> its status; any other refusal is a conflict (409).
REFUSAL_STATUS = {
    "invalid_decision": 422, "decision_refused": 422, "invalid_cancel": 422,
    "timeout": 503, "unavailable": 503, "hold_not_found": 404,
}
INTAKE_STATUS = {"idempotency_conflict": 409, "unknown_restaurant": 404,
                 "hold_not_found": 404, "hold_expired": 409, "hold_used": 409,
                 "hold_mismatch": 409, "hold_limit": 409}
# A body field the API never takes, and why (the schema forbids it too).
NOT_ACCEPTED = {"actor": "not accepted: the actor is the API token's identity (api:<token name>)"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry of these error statuses."""
    return {s: {"model": Error} for s in statuses}


def json_error(status: int, code: str, message: str, *,
               headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The one shape of every error answer (401s name the Bearer scheme)."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return json_error(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(BookingNotFound)
    async def not_found(_request: Request, exc: BookingNotFound) -> JSONResponse:
        return json_error(404, "not_found", f"no booking {exc.booking_id}")

    @app.exception_handler(NotAvailable)
    async def not_available(_request: Request, exc: NotAvailable) -> JSONResponse:
        return json_error(409, exc.code, exc.message, nearest=[t.isoformat() for t in exc.nearest])

    @app.exception_handler(InvalidBooking)
    async def invalid_booking(_request: Request, exc: InvalidBooking) -> JSONResponse:
        return json_error(INTAKE_STATUS.get(exc.code, 422), exc.code, exc.message)

    @app.exception_handler(AlreadyResolved)
    async def already_resolved(_request: Request, exc: AlreadyResolved) -> JSONResponse:
        return json_error(409, exc.code, f"already resolved: {exc.state} "
                     f"({exc.reason or 'no reason recorded'})")

    @app.exception_handler(BookingActionRefused)
    async def refused(_request: Request, exc: BookingActionRefused) -> JSONResponse:
        extra: dict[str, Any] = {"overridable": True} if exc.overridable else {}
        return json_error(REFUSAL_STATUS.get(exc.code, 409), exc.code, exc.message, **extra)

    @app.exception_handler(CpuBusy)
    async def busy(_request: Request, exc: CpuBusy) -> JSONResponse:
        return json_error(503, exc.code, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        errors = exc.errors()
        for err in errors[:10]:
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            message = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden" and loc and loc[-1] in NOT_ACCEPTED:
                message = NOT_ACCEPTED[loc[-1]]
            problems.append(f"{'.'.join(loc) or 'body'}: {message}")
        # A malformed Idempotency-Key has its own documented code, as the
        # service gives it (the header's pattern refuses it before the service).
        key_only = bool(errors) and all(
            [str(p).lower() for p in err.get("loc", ())] == ["header", "idempotency-key"]
            for err in errors)
        code = "bad_idempotency_key" if key_only else "validation_error"
        return json_error(422, code, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that cannot be decoded: like malformed JSON
            return json_error(422, "validation_error", f"body: {exc.detail}")
        if exc.status_code == 413:  # past MAX_BODY_BYTES while reading (api/guard.py)
            return json_error(413, "payload_too_large",
                              f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB")
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                 403: "forbidden"}
        code = codes.get(exc.status_code, "http_error")
        return json_error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        from seatflow.breaker import is_infrastructure_error

        if is_infrastructure_error(exc):
            return json_error(503, "unavailable", "the database is unavailable; retry later "
                         "(with the same Idempotency-Key)")
        log.error("api.unexpected_error", error_type=type(exc).__name__)
        return json_error(500, "internal_error", "unexpected error; nothing was changed "
                     "by this request unless it says otherwise")
