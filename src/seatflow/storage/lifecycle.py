"""A booking's life after intake, each function one transaction: verify it
(created -> capacity_verified -> assignment_pending, or failed), apply one
transition, cancel it. (Attempts and assignments: `storage.attempts`.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.mail import cancellation_email
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.states import AssignmentState
from seatflow.storage.db import Driver, connection, statement
from seatflow.storage.placement import email_booking
from seatflow.storage.restaurants import policy_from_json, policy_sql
from seatflow.storage.transitions import (
    BookingNotFound,
    Step,
    VersionConflict,
    already_applied,
    current_state,
    record_event,
    transition,
    transitions,
)

S = AssignmentState


@dataclass(frozen=True)
class VerifiedBooking:
    booking_id: str
    restaurant_id: str
    party_size: int
    state: str
    version: int
    status: str
    start: datetime
    table_ids: tuple[str, ...]  # every table of the restaurant
    reason: str | None  # why the booking failed verification, if it did
    attempts_used: int


@dataclass(frozen=True)
class Transitioned:
    ok: bool
    state: str
    version: int
    conflict: bool = False
    reason: str | None = None
    message_queued: bool = False  # a cancel queued the guest's cancellation message


VERIFY_READ = statement(
    "SELECT b.restaurant_id, b.party_size, b.start_at, b.assignment_state, "
    "b.assignment_state_version, b.status, b.last_reason, b.created_at, "
    # What the workflow needs besides, in the same round trip.
    "ARRAY(SELECT t.code FROM dining_tables t WHERE t.restaurant_id = "
    "b.restaurant_id ORDER BY t.code) AS table_ids, "
    "(SELECT count(*) FROM booking_assignment_attempts a WHERE a.booking_id = "
    "b.id AND a.result <> 'confirmed') AS attempts_used, "
    + policy_sql("b.restaurant_id") + " AS policy "
    "FROM bookings b WHERE b.id = CAST(:id AS uuid) FOR UPDATE OF b"
)


async def verify_booking(engine: AsyncEngine, booking_id: str, *, now: datetime
                         ) -> VerifiedBooking:
    """Load the booking and walk created -> capacity_verified -> assignment_pending,
    or -> failed with a reason when it can never be seated. Resumes where a
    previous run stopped; leaves other states untouched."""
    async with connection(engine) as conn:
        row = await VERIFY_READ.row(conn, id=booking_id)
        if row is None:
            raise BookingNotFound(booking_id)
        state, version = str(row["assignment_state"]), int(row["assignment_state_version"])
        reason = row["last_reason"]
        if state == S.CREATED:
            policy = policy_from_json(row["policy"])
            try:
                if policy is None:
                    raise InvalidBooking(
                        "unknown_restaurant", f"unknown restaurant {row['restaurant_id']!r}"
                    )
                # Whether the time is bookable was decided at intake: judge it
                # as of then, so a workflow started late (the intake relay after
                # an outage) never fails a booking that was valid when made.
                booking_window(policy, row["party_size"], row["start_at"],
                               now=min(now, row["created_at"]))
            except InvalidBooking as exc:
                reason = f"invalid_booking: {exc.message}"
                version = await transition(
                    conn, booking_id, version, S.FAILED, reason=reason,
                    metadata={"code": exc.code},
                )
                state = S.FAILED.value
            else:
                # created -> capacity_verified -> assignment_pending in one
                # statement (the same rows as two transitions; issue 27)
                version = await transitions(conn, booking_id, version, S.CREATED, [
                    Step(S.CAPACITY_VERIFIED,
                         reason=f"party of {row['party_size']} fits {policy.id}"),
                    Step(S.ASSIGNMENT_PENDING),
                ])
                state = S.ASSIGNMENT_PENDING.value
        if state == S.CAPACITY_VERIFIED:  # a run that stopped in between
            version = await transition(conn, booking_id, version, S.ASSIGNMENT_PENDING)
            state = S.ASSIGNMENT_PENDING.value
        attempts_used = int(row["attempts_used"])  # verify records no attempt
        if state == S.ASSIGNMENT_PENDING and attempts_used == 0 and row["start_at"] <= now:
            # The start passed before any attempt ran: a person decides (seat
            # them now, call the guest, or reject), not the clock.
            reason = (f"start_passed: the start {row['start_at'].isoformat()} passed before "
                      "any assignment attempt ran")
            version = await transition(conn, booking_id, version, S.MANUAL_REVIEW, reason=reason)
            state = S.MANUAL_REVIEW.value
        return VerifiedBooking(
            booking_id=booking_id,
            restaurant_id=row["restaurant_id"],
            party_size=row["party_size"],
            state=state,
            version=version,
            status=row["status"],
            start=row["start_at"],
            table_ids=tuple(row["table_ids"]),
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
) -> Transitioned:
    """One transition in its own transaction; idempotent when retried."""
    async with connection(engine) as conn:
        try:
            version = await transition(
                conn, booking_id, expected_version, to_state, reason=reason, actor=actor,
                metadata=metadata,
            )
            return Transitioned(ok=True, state=to_state, version=version)
        except VersionConflict as exc:
            if exc.actual == expected_version + 1 and await already_applied(
                conn, booking_id, expected_version, to_state
            ):
                return Transitioned(ok=True, state=to_state, version=exc.actual)
            await record_version_conflict(conn, booking_id, expected_version, exc, to_state)
            return Transitioned(
                ok=False, state=exc.state, version=exc.actual, conflict=True, reason=str(exc)
            )


async def record_version_conflict(
    conn: Driver, booking_id: str, expected: int, exc: VersionConflict, to_state: str
) -> None:
    """Counted by `seatflow report` as the transition error rate."""
    await record_event(
        conn, booking_id=booking_id, source="assignment.state_machine",
        event_type="booking.assignment_version_conflict",
        context={"expected_version": expected, "actual_version": exc.actual,
                 "state": exc.state, "to": to_state},
    )


async def cancel_booking(
    engine: AsyncEngine, booking_id: str, *, actor: str | None, reason: str | None
) -> Transitioned:
    """Release allocations, set status cancelled and state cancelled, in one transaction.
    Whatever version the booking is at: cancellation wins from any non-final state.

    The guest's messages change in the same transaction: a confirmation or
    table change not yet claimed is withdrawn (one being sent goes out, and
    the cancellation follows it), and a guest with an address who was
    confirmed, or had a confirmation pending, gets one cancellation message
    queued (one row per booking and kind: exactly once, whoever cancels)."""
    async with connection(engine) as conn:
        state, version = await current_state(conn, booking_id)
        if state in (S.CANCELLED, S.FAILED):
            return Transitioned(ok=state == S.CANCELLED, state=state, version=version,
                                    reason=f"booking already {state}")
        queued = await _cancellation_message(conn, booking_id)
        await RELEASE_ALL.run(conn, id=booking_id)
        version = await transition(
            conn, booking_id, version, S.CANCELLED, reason=reason or "booking cancelled",
            actor=actor, set_columns={"status": "cancelled"},
        )
        return Transitioned(ok=True, state=S.CANCELLED.value, version=version,
                            message_queued=queued)


RELEASE_ALL = statement("DELETE FROM allocations WHERE booking_id = CAST(:id AS uuid)")
WITHDRAW = statement(
    "UPDATE email_outbox SET status = 'withdrawn', last_error = :why "
    "WHERE booking_id = CAST(:id AS uuid) AND kind = ANY(:kinds) "
    "AND status = 'pending' AND claim_token IS NULL RETURNING kind")
CONFIRMED_GUEST = statement(
    "SELECT b.guest_email FROM bookings b WHERE b.id = CAST(:id AS uuid) "
    "AND b.guest_email IS NOT NULL AND b.guest_email <> '' AND EXISTS ("
    "SELECT 1 FROM email_outbox o WHERE o.booking_id = b.id AND o.kind = 'confirmation')")
QUEUE_CANCELLATION = statement(
    "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body, html, ics) "
    "VALUES (CAST(:id AS uuid), 'cancellation', :to, :subject, :body, :html, :ics) "
    "ON CONFLICT (booking_id, kind) DO NOTHING")


async def _cancellation_message(conn: Driver, booking_id: str) -> bool:
    """Withdraw what no longer holds, queue the cancellation (see
    cancel_booking); True when a cancellation message was queued."""
    withdrawn = [r["kind"] for r in await WITHDRAW.rows(
        conn, id=booking_id, kinds=["confirmation", "table_changed"],
        why="withdrawn: the booking was cancelled before it was sent")]
    for kind in sorted(withdrawn):
        await record_event(conn, booking_id=booking_id, source="assignment.cancel",
                           event_type="email.withdrawn",
                           context={"kind": kind, "reason": "booking cancelled"})
    guest = await CONFIRMED_GUEST.value(conn, id=booking_id)
    if guest is None:
        return False
    message = cancellation_email(await email_booking(conn, booking_id))
    await QUEUE_CANCELLATION.run(conn, id=booking_id, to=guest, subject=message.subject,
                                 body=message.text, html=message.html, ics=message.ics)
    return True
