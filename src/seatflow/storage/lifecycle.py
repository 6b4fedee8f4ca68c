"""A booking's life after intake, each function one transaction: verify it
(created -> capacity_verified -> assignment_pending, or failed), apply one
transition, record a failed attempt, cancel it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.assignment import FailedAttempt
from seatflow.domain.messages import BookingContext, TransitionResult
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.states import AssignmentState
from seatflow.storage.permits import release as release_permit
from seatflow.storage.restaurants import load_policy
from seatflow.storage.transitions import (
    BookingNotFound,
    VersionConflict,
    already_applied,
    current_state,
    record_event,
    transition,
)

S = AssignmentState


async def verify_booking(engine: AsyncEngine, booking_id: str, *, now: datetime) -> BookingContext:
    """Load the booking and walk created -> capacity_verified -> assignment_pending,
    or -> failed with a reason when it can never be seated. Resumes where a
    previous run stopped; leaves other states untouched."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT b.restaurant_id, b.party_size, b.start_at, b.assignment_state, "
                    "b.assignment_state_version, b.status, b.last_reason, b.created_at, "
                    # What the workflow needs besides, in the same round trip.
                    "ARRAY(SELECT t.code FROM dining_tables t WHERE t.restaurant_id = "
                    "b.restaurant_id ORDER BY t.code) AS table_ids, "
                    "(SELECT count(*) FROM booking_assignment_attempts a WHERE a.booking_id = "
                    "b.id AND a.result <> 'confirmed') AS attempts_used "
                    "FROM bookings b WHERE b.id = CAST(:id AS uuid) FOR UPDATE OF b"
                ),
                {"id": booking_id},
            )
        ).one_or_none()
        if row is None:
            raise BookingNotFound(booking_id)
        state, version = str(row.assignment_state), int(row.assignment_state_version)
        reason = row.last_reason
        if state == S.CREATED:
            policy = await load_policy(conn, row.restaurant_id)
            try:
                if policy is None:
                    raise InvalidBooking(
                        "unknown_restaurant", f"unknown restaurant {row.restaurant_id!r}"
                    )
                # Whether the time is bookable was decided at intake: judge it
                # as of then, so a workflow started late (the intake relay after
                # an outage) never fails a booking that was valid when made.
                booking_window(policy, row.party_size, row.start_at,
                               now=min(now, row.created_at))
            except InvalidBooking as exc:
                reason = f"invalid_booking: {exc.message}"
                version = await transition(
                    conn, booking_id, version, S.FAILED, reason=reason,
                    metadata={"code": exc.code},
                )
                state = S.FAILED.value
            else:
                version = await transition(
                    conn, booking_id, version, S.CAPACITY_VERIFIED,
                    reason=f"party of {row.party_size} fits {policy.id}",
                )
                state = S.CAPACITY_VERIFIED.value
        if state == S.CAPACITY_VERIFIED:
            version = await transition(conn, booking_id, version, S.ASSIGNMENT_PENDING)
            state = S.ASSIGNMENT_PENDING.value
        attempts_used = int(row.attempts_used)  # verify records no attempt
        if state == S.ASSIGNMENT_PENDING and attempts_used == 0 and row.start_at <= now:
            # The start passed before any attempt ran: a person decides (seat
            # them now, call the guest, or reject), not the clock.
            reason = (f"start_passed: the start {row.start_at.isoformat()} passed before "
                      "any assignment attempt ran")
            version = await transition(conn, booking_id, version, S.MANUAL_REVIEW, reason=reason)
            state = S.MANUAL_REVIEW.value
        return BookingContext(
            booking_id=booking_id,
            restaurant_id=row.restaurant_id,
            party_size=row.party_size,
            state=state,
            version=version,
            status=row.status,
            start=row.start_at.isoformat(),
            table_ids=tuple(row.table_ids),
            reason=reason,
            attempts_used=attempts_used,
        )


async def apply_transition(
    engine: AsyncEngine,
    booking_id: str,
    expected_version: int,
    to_state: str,
    *,
    reason: str | None = None,
    actor: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> TransitionResult:
    """One transition in its own transaction; idempotent when retried."""
    async with engine.begin() as conn:
        try:
            version = await transition(
                conn, booking_id, expected_version, to_state, reason=reason, actor=actor,
                metadata=metadata,
            )
            return TransitionResult(ok=True, state=to_state, version=version)
        except VersionConflict as exc:
            if exc.actual == expected_version + 1 and await already_applied(
                conn, booking_id, expected_version, to_state
            ):
                return TransitionResult(ok=True, state=to_state, version=exc.actual)
            await record_version_conflict(conn, booking_id, expected_version, exc, to_state)
            return TransitionResult(
                ok=False, state=exc.state, version=exc.actual, conflict=True, reason=str(exc)
            )


async def record_version_conflict(
    conn: AsyncConnection, booking_id: str, expected: int, exc: VersionConflict, to_state: str
) -> None:
    """Counted by `seatflow report` as the transition error rate."""
    await record_event(
        conn, booking_id=booking_id, source="assignment.state_machine",
        event_type="booking.assignment_version_conflict",
        context={"expected_version": expected, "actual_version": exc.actual,
                 "state": exc.state, "to": to_state},
    )


async def record_attempt(
    conn: AsyncConnection,
    booking_id: str,
    *,
    attempt_no: int,
    pipeline: str,
    result: str,
    reason: str | None,
    strategy: str | None,
    plans_tried: tuple[tuple[str, ...], ...],
    permit_wait_ms: float | None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, strategy, "
            "result, reason, plans_tried, permit_wait_ms) VALUES (CAST(:id AS uuid), :n, :p, :s, "
            ":res, :reason, CAST(:plans AS jsonb), :w) "
            "ON CONFLICT (booking_id, pipeline, attempt_no) DO NOTHING"
        ),
        {"id": booking_id, "n": attempt_no, "p": pipeline, "s": strategy, "res": result,
         "reason": reason, "plans": json.dumps([list(p) for p in plans_tried]),
         "w": permit_wait_ms},
    )


async def record_failed_attempt(engine: AsyncEngine, req: FailedAttempt) -> TransitionResult:
    """Record a failed attempt and move to the state the policy chose
    (`req.on_failure`: back to assignment_pending, or manual_review)."""
    to_state = S(req.on_failure)
    async with engine.begin() as conn:
        try:
            version = await transition(
                conn, req.booking_id, req.expected_version, to_state, reason=req.reason,
                metadata={"attempt_no": req.attempt_no, "pipeline": req.pipeline},
            )
        except VersionConflict as exc:
            if exc.actual == req.expected_version + 1 and await already_applied(
                conn, req.booking_id, req.expected_version, to_state.value
            ):
                return TransitionResult(ok=True, state=to_state.value, version=exc.actual)
            return TransitionResult(
                ok=False, state=exc.state, version=exc.actual, conflict=True, reason=str(exc)
            )
        await record_attempt(
            conn, req.booking_id, attempt_no=req.attempt_no, pipeline=req.pipeline,
            result="no_plan" if not req.plans_tried else "all_plans_taken", reason=req.reason,
            strategy=req.strategy, plans_tried=req.plans_tried, permit_wait_ms=req.permit_wait_ms,
        )
        await release_permit(conn, req.booking_id)
        return TransitionResult(ok=True, state=to_state.value, version=version)


async def cancel_booking(
    engine: AsyncEngine, booking_id: str, *, actor: str | None, reason: str | None
) -> TransitionResult:
    """Release allocations, set status cancelled and state cancelled, in one transaction.
    Whatever version the booking is at: cancellation wins from any non-final state."""
    async with engine.begin() as conn:
        state, version = await current_state(conn, booking_id)
        if state in (S.CANCELLED, S.FAILED):
            return TransitionResult(ok=state == S.CANCELLED, state=state, version=version,
                                    reason=f"booking already {state}")
        await conn.execute(
            text("DELETE FROM allocations WHERE booking_id = CAST(:id AS uuid)"), {"id": booking_id}
        )
        await release_permit(conn, booking_id)
        # A confirmation not yet sent is never sent now (the send checks the
        # state); say so where operators look.
        unsent = (await conn.execute(
            text("SELECT 1 FROM email_outbox WHERE booking_id = CAST(:id AS uuid) "
                 "AND kind = 'confirmation' AND status = 'pending'"),
            {"id": booking_id},
        )).first()
        if unsent is not None:
            await record_event(conn, booking_id=booking_id, source="assignment.cancel",
                               event_type="email.withdrawn",
                               context={"kind": "confirmation", "reason": "booking cancelled"})
        version = await transition(
            conn, booking_id, version, S.CANCELLED, reason=reason or "booking cancelled",
            actor=actor, set_columns={"status": "cancelled"},
        )
        return TransitionResult(ok=True, state=S.CANCELLED.value, version=version)
