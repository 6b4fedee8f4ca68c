"""Activities of the booking workflow.

Errors are sorted by kind: a business outcome is a return value; a booking
that does not exist or a forbidden transition is a non-retryable
ApplicationError; anything else (database down, timeouts, deadlocks) raises
and is retried by the activity retry policy without consuming an attempt.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from seatflow.config import Settings
from seatflow.domain.messages import (
    BookingContext,
    CancelRequest,
    ConfirmRequest,
    ConfirmResult,
    EmailRequest,
    EmailResult,
    FailedAttemptRequest,
    FindPlansRequest,
    FindPlansResult,
    TransitionRequest,
    TransitionResult,
    VerifyRequest,
)
from seatflow.domain.planning import AdjacencyMode, BookingRequest, EngineConfig
from seatflow.domain.states import IllegalTransition
from seatflow.engine import search
from seatflow.mail import MailTransport, send_outbox_email
from seatflow.storage import bookings as store
from seatflow.storage.restaurants import load_snapshot
from seatflow.storage.transitions import BookingNotFound


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        max_tables=settings.max_tables,
        max_overage=settings.max_overage,
        adjacency_mode=AdjacencyMode(settings.adjacency_mode),
    )


def _non_retryable(exc: Exception) -> ApplicationError:
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)


class BookingActivities:
    """Given its dependencies once, at worker start (STYLE.md)."""

    def __init__(self, engine: AsyncEngine, transport: MailTransport, settings: Settings):
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.config = engine_config(settings)

    @activity.defn(name="verify_booking")
    async def verify_booking(self, req: VerifyRequest) -> BookingContext:
        try:
            return await store.verify_booking(
                self.engine, req.booking_id, now=datetime.now(timezone.utc)
            )
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="transition_state")
    async def transition_state(self, req: TransitionRequest) -> TransitionResult:
        try:
            return await store.apply_transition(
                self.engine, req.booking_id, req.expected_version, req.to_state,
                reason=req.reason, actor=req.actor, metadata=req.metadata,
            )
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="find_plans")
    async def find_plans(self, req: FindPlansRequest) -> FindPlansResult:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT restaurant_id, party_size, start_at, occupied_until, "
                        "zone_preference FROM bookings WHERE id = CAST(:id AS uuid)"
                    ),
                    {"id": req.booking_id},
                )
            ).one_or_none()
            if row is None:
                raise _non_retryable(BookingNotFound(req.booking_id))
            snapshot = await load_snapshot(
                conn, row.restaurant_id, row.start_at, row.occupied_until,
                exclude_booking=req.booking_id,
            )
        request = BookingRequest(
            booking_id=req.booking_id,
            party_size=row.party_size,
            start=row.start_at,
            end=row.occupied_until,
            zone_preference=row.zone_preference,
        )
        started = time.perf_counter()
        result = search(snapshot, request, self.config, now=datetime.now(timezone.utc))
        elapsed_ms = (time.perf_counter() - started) * 1000
        return FindPlansResult(
            plans=result.plans, moves=result.moves, reason=result.reason,
            evaluated=result.evaluated, search_ms=round(elapsed_ms, 3),
        )

    @activity.defn(name="confirm_plan")
    async def confirm_plan(self, req: ConfirmRequest) -> ConfirmResult:
        try:
            return await store.confirm_plan(self.engine, req)
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="record_failed_attempt")
    async def record_failed_attempt(self, req: FailedAttemptRequest) -> TransitionResult:
        try:
            return await store.record_failed_attempt(self.engine, req)
        except (BookingNotFound, IllegalTransition) as exc:
            raise _non_retryable(exc) from exc

    @activity.defn(name="send_confirmation_email")
    async def send_confirmation_email(self, req: EmailRequest) -> EmailResult:
        return await send_outbox_email(
            self.engine, self.transport, req.booking_id, req.kind, self.settings.mail_from
        )

    @activity.defn(name="cancel_booking")
    async def cancel_booking(self, req: CancelRequest) -> TransitionResult:
        try:
            return await store.cancel_booking(
                self.engine, req.booking_id, actor=req.actor, reason=req.reason
            )
        except BookingNotFound as exc:
            raise _non_retryable(exc) from exc

    def all(self) -> list[object]:
        return [
            self.verify_booking,
            self.transition_state,
            self.find_plans,
            self.confirm_plan,
            self.record_failed_attempt,
            self.send_confirmation_email,
            self.cancel_booking,
        ]
