"""Booking units of work: intake, verification, attempts, the atomic confirm,
cancellation. Each public function is one transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.messages import (
    BookingContext,
    ConfirmRequest,
    ConfirmResult,
    FailedAttemptRequest,
    TransitionResult,
)
from seatflow.domain.planning import Move, Plan
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.states import TERMINAL_STATES, AssignmentState
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
EXCLUSION_VIOLATION = "23P01"


def workflow_id_for(booking_id: str) -> str:
    return f"booking-assignment-{booking_id}"


@dataclass(frozen=True)
class NewBooking:
    restaurant_id: str
    party_size: int
    start: datetime
    zone_preference: str | None = None
    guest_name: str | None = None
    guest_email: str | None = None
    booking_id: str | None = None


async def insert_booking(engine: AsyncEngine, new: NewBooking, *, now: datetime) -> str:
    """Validate against the restaurant and insert the booking plus its intake row.

    Raises InvalidBooking (nothing written) when the booking can never be
    seated as asked: unknown restaurant, bad party, past, outside service.
    """
    booking_id = new.booking_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        policy = await load_policy(conn, new.restaurant_id)
        if policy is None:
            raise InvalidBooking("unknown_restaurant", f"unknown restaurant {new.restaurant_id!r}")
        window = booking_window(policy, new.party_size, new.start, now=now)
        if new.zone_preference is not None:
            zone = (
                await conn.execute(
                    text("SELECT 1 FROM zones WHERE restaurant_id = :r AND id = :z"),
                    {"r": new.restaurant_id, "z": new.zone_preference},
                )
            ).first()
            if zone is None:
                raise InvalidBooking(
                    "unknown_zone",
                    f"restaurant {new.restaurant_id} has no zone {new.zone_preference!r}",
                )
        await conn.execute(
            text(
                "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                "occupied_until, zone_preference, guest_name, guest_email) VALUES "
                "(CAST(:id AS uuid), :r, :p, :s, :e, :o, :z, :n, :m)"
            ),
            {"id": booking_id, "r": new.restaurant_id, "p": new.party_size, "s": window.start,
             "e": window.end, "o": window.occupied_until, "z": new.zone_preference,
             "n": new.guest_name, "m": new.guest_email},
        )
        await conn.execute(
            text(
                "INSERT INTO booking_assignment_state_history "
                "(booking_id, from_state, to_state, version, reason) "
                "VALUES (CAST(:id AS uuid), NULL, 'created', 0, 'booking received')"
            ),
            {"id": booking_id},
        )
        await conn.execute(
            text(
                "INSERT INTO intake_outbox (booking_id, workflow_id) "
                "VALUES (CAST(:id AS uuid), :wf)"
            ),
            {"id": booking_id, "wf": workflow_id_for(booking_id)},
        )
    return booking_id


async def insert_raw_booking(
    engine: AsyncEngine,
    *,
    restaurant_id: str,
    party_size: int,
    start: datetime,
    end: datetime,
    occupied_until: datetime,
    booking_id: str | None = None,
    zone_preference: str | None = None,
) -> str:
    """Insert a booking without validation: for tests of invalid bookings that
    reach the workflow some other way (a host application, an old row)."""
    booking_id = booking_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                "occupied_until, zone_preference) VALUES (CAST(:id AS uuid), :r, :p, :s, :e, :o, :z)"
            ),
            {"id": booking_id, "r": restaurant_id, "p": party_size, "s": start, "e": end,
             "o": occupied_until, "z": zone_preference},
        )
    return booking_id


async def mark_intake_started(engine: AsyncEngine, booking_id: str, error: str | None = None) -> None:
    async with engine.begin() as conn:
        if error is None:
            await conn.execute(
                text("UPDATE intake_outbox SET started_at = clock_timestamp(), last_error = NULL "
                     "WHERE booking_id = CAST(:id AS uuid) AND started_at IS NULL"),
                {"id": booking_id},
            )
        else:
            await conn.execute(
                text("UPDATE intake_outbox SET last_error = :e WHERE booking_id = CAST(:id AS uuid)"),
                {"id": booking_id, "e": error[:500]},
            )


async def _table_ids(conn: AsyncConnection, restaurant_id: str) -> tuple[str, ...]:
    rows = await conn.execute(
        text("SELECT code FROM dining_tables WHERE restaurant_id = :r ORDER BY code"),
        {"r": restaurant_id},
    )
    return tuple(rows.scalars().all())


async def _attempts_used(conn: AsyncConnection, booking_id: str) -> int:
    value = (
        await conn.execute(
            text("SELECT count(*) FROM booking_assignment_attempts "
                 "WHERE booking_id = CAST(:id AS uuid) AND result <> 'confirmed'"),
            {"id": booking_id},
        )
    ).scalar_one()
    return int(value)


async def verify_booking(engine: AsyncEngine, booking_id: str, *, now: datetime) -> BookingContext:
    """Load the booking and walk created -> capacity_verified -> assignment_pending,
    or -> failed with a reason when it can never be seated. Resumes where a
    previous run stopped; leaves other states untouched."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT restaurant_id, party_size, start_at, assignment_state, "
                    "assignment_state_version, status, last_reason, created_at FROM bookings "
                    "WHERE id = CAST(:id AS uuid) FOR UPDATE"
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
        attempts_used = await _attempts_used(conn, booking_id)
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
            table_ids=await _table_ids(conn, row.restaurant_id),
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


async def _record_attempt(
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


async def record_failed_attempt(engine: AsyncEngine, req: FailedAttemptRequest) -> TransitionResult:
    """Record a failed attempt and move back to assignment_pending, or to
    manual_review when it was the last one."""
    to_state = S.MANUAL_REVIEW if req.attempt_no >= req.max_attempts else S.ASSIGNMENT_PENDING
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
        await _record_attempt(
            conn, req.booking_id, attempt_no=req.attempt_no, pipeline=req.pipeline,
            result="no_plan" if not req.plans_tried else "all_plans_taken", reason=req.reason,
            strategy=req.strategy, plans_tried=req.plans_tried, permit_wait_ms=req.permit_wait_ms,
        )
        await release_permit(conn, req.booking_id)
        return TransitionResult(ok=True, state=to_state.value, version=version)


async def _allocate(
    conn: AsyncConnection, booking_id: str, restaurant_id: str, tables: tuple[str, ...],
    start: datetime, until: datetime,
) -> str | None:
    """Insert allocations for `tables`; returns why not, or None on success.
    The exclusion constraint decides races with concurrent bookings."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                text(
                    "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
                    "SELECT CAST(:b AS uuid), :r, t.id, tstzrange(:s, :e, '[)') "
                    "FROM dining_tables t JOIN zones z ON z.restaurant_id = t.restaurant_id "
                    "AND z.id = t.zone_id WHERE t.restaurant_id = :r AND t.code = ANY(:codes) "
                    "AND t.active AND z.active AND t.status = 'available'"
                ),
                {"b": booking_id, "r": restaurant_id, "s": start, "e": until,
                 "codes": list(tables)},
            )
            if result.rowcount != len(tables):
                raise _PlanUnavailable(
                    f"tables {','.join(tables)}: unknown, inactive or out of service"
                )
    except _PlanUnavailable as exc:
        return str(exc)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION or "23P01" in str(exc):
            return f"tables {','.join(tables)} taken by a concurrent booking"
        raise
    return None


class _PlanUnavailable(Exception):
    pass


async def _apply_moves(
    conn: AsyncConnection, booking_id: str, restaurant_id: str, moves: tuple[Move, ...]
) -> str | None:
    """Re-packing: move other confirmed bookings, all or nothing."""
    try:
        async with conn.begin_nested():
            for move in moves:
                row = (
                    await conn.execute(
                        text(
                            "SELECT start_at, occupied_until, assignment_state, "
                            "assignment_state_version FROM bookings WHERE id = CAST(:id AS uuid) "
                            "FOR UPDATE"
                        ),
                        {"id": move.booking_id},
                    )
                ).one_or_none()
                if row is None or row.assignment_state != S.CONFIRMED:
                    raise _PlanUnavailable(f"booking {move.booking_id} is no longer confirmed")
                held = (
                    await conn.execute(
                        text(
                            "SELECT t.code FROM allocations a JOIN dining_tables t "
                            "ON t.id = a.table_id WHERE a.booking_id = CAST(:id AS uuid) "
                            "ORDER BY t.code"
                        ),
                        {"id": move.booking_id},
                    )
                ).scalars().all()
                if tuple(held) != tuple(sorted(move.from_tables)):
                    raise _PlanUnavailable(f"booking {move.booking_id} changed tables")
                await conn.execute(
                    text("DELETE FROM allocations WHERE booking_id = CAST(:id AS uuid)"),
                    {"id": move.booking_id},
                )
                why = await _allocate(
                    conn, move.booking_id, restaurant_id, tuple(sorted(move.to_tables)),
                    row.start_at, row.occupied_until,
                )
                if why:
                    raise _PlanUnavailable(why)
                version = int(row.assignment_state_version) + 1
                await conn.execute(
                    text("UPDATE bookings SET assignment_state_version = :v, "
                         "updated_at = clock_timestamp() WHERE id = CAST(:id AS uuid)"),
                    {"v": version, "id": move.booking_id},
                )
                await conn.execute(
                    text(
                        "INSERT INTO booking_assignment_state_history (booking_id, from_state, "
                        "to_state, version, reason, metadata) VALUES (CAST(:id AS uuid), "
                        "'confirmed', 'confirmed', :v, :reason, CAST(:m AS jsonb))"
                    ),
                    {"id": move.booking_id, "v": version, "reason": f"repacked_for:{booking_id}",
                     "m": json.dumps({"from_tables": list(move.from_tables),
                                      "to_tables": list(move.to_tables)})},
                )
    except _PlanUnavailable as exc:
        return str(exc)
    return None


async def confirm_plan(engine: AsyncEngine, req: ConfirmRequest) -> ConfirmResult:
    """The atomic confirm (DESIGN.md section 4): in one transaction, check the
    version, allocate the first plan that is still free, move the state to
    assigned then confirmed, record the attempt, the `booking.confirmed`
    event and the confirmation email in the outbox. When every plan was taken
    meanwhile, record a failed attempt instead (unless this is an operator's
    manual assignment, which changes nothing and reports why)."""
    manual = req.actor is not None
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT restaurant_id, party_size, start_at, occupied_until, guest_name, "
                    "guest_email, assignment_state, assignment_state_version FROM bookings "
                    "WHERE id = CAST(:id AS uuid) FOR UPDATE"
                ),
                {"id": req.booking_id},
            )
        ).one_or_none()
        if row is None:
            raise BookingNotFound(req.booking_id)
        state, version = str(row.assignment_state), int(row.assignment_state_version)
        if version != req.expected_version:
            if state == S.CONFIRMED and version == req.expected_version + 2:
                tables = await booking_tables(conn, req.booking_id)  # a retry after commit
                strategy = (await conn.execute(
                    text("SELECT assignment_strategy FROM bookings WHERE id = CAST(:id AS uuid)"),
                    {"id": req.booking_id})).scalar_one()
                return ConfirmResult(True, state, version, tables=tables, strategy=strategy)
            return ConfirmResult(
                False, state, version,
                reason=f"version conflict: expected {req.expected_version}, found {version}",
            )
        tried: list[tuple[str, ...]] = []
        reasons: list[str] = []
        chosen: Plan | None = None
        if req.moves:
            why = await _apply_moves(conn, req.booking_id, row.restaurant_id, req.moves)
            if why:
                reasons.append(f"re-packing failed: {why}")
        for plan in req.plans if not reasons else ():
            tables = tuple(sorted(plan.tables))
            tried.append(tables)
            why = await _allocate(
                conn, req.booking_id, row.restaurant_id, tables, row.start_at, row.occupied_until
            )
            if why is None:
                chosen = plan
                break
            reasons.append(why)
        if chosen is None:
            reason = (
                f"all {len(tried)} plans were taken at confirm time" if tried and not manual
                else "; ".join(reasons) or "no plan to confirm"
            )
            if manual:
                return ConfirmResult(False, state, version, reason=reason, plans_tried=tuple(tried))
            to_state = S.MANUAL_REVIEW if req.attempt_no >= req.max_attempts else S.ASSIGNMENT_PENDING
            new_version = await transition(
                conn, req.booking_id, version, to_state, reason=reason,
                metadata={"attempt_no": req.attempt_no, "pipeline": req.pipeline},
            )
            await _record_attempt(
                conn, req.booking_id, attempt_no=req.attempt_no, pipeline=req.pipeline,
                result="all_plans_taken", reason=reason, strategy=None,
                plans_tried=tuple(tried), permit_wait_ms=req.permit_wait_ms,
            )
            await release_permit(conn, req.booking_id)
            return ConfirmResult(
                False, to_state.value, new_version, reason=reason, plans_tried=tuple(tried)
            )
        tables = tuple(sorted(chosen.tables))
        meta = {"tables": list(tables), "strategy": chosen.strategy, "score": chosen.score,
                "attempt_no": req.attempt_no, "pipeline": req.pipeline}
        if req.note:
            meta["note"] = req.note
        version = await transition(
            conn, req.booking_id, version, S.ASSIGNED, actor=req.actor, metadata=meta,
            reason=f"manual assignment by {req.actor}" if manual else f"plan {','.join(tables)}",
        )
        version = await transition(
            conn, req.booking_id, version, S.CONFIRMED, actor=req.actor,
            reason="confirmed",
            set_columns={"status": "confirmed", "assignment_strategy": chosen.strategy,
                         "assignment_pipeline": req.pipeline},
        )
        await conn.execute(
            text("UPDATE bookings SET confirmed_at = clock_timestamp() WHERE id = CAST(:id AS uuid)"),
            {"id": req.booking_id},
        )
        await _record_attempt(
            conn, req.booking_id, attempt_no=req.attempt_no, pipeline=req.pipeline,
            result="confirmed", reason=None, strategy=chosen.strategy, plans_tried=tuple(tried),
            permit_wait_ms=req.permit_wait_ms,
        )
        await record_event(
            conn, booking_id=req.booking_id, restaurant_id=row.restaurant_id,
            source="assignment.confirm", event_type="booking.confirmed",
            context={"tables": list(tables), "strategy": chosen.strategy,
                     "pipeline": req.pipeline, "attempt_no": req.attempt_no,
                     "actor": req.actor, "moves": len(req.moves)},
        )
        await _enqueue_confirmation_email(conn, req.booking_id, row, tables)
        await release_permit(conn, req.booking_id)
        return ConfirmResult(
            True, S.CONFIRMED.value, version, tables=tables, strategy=chosen.strategy,
            plans_tried=tuple(tried),
        )


async def _enqueue_confirmation_email(
    conn: AsyncConnection, booking_id: str, row: Any, tables: tuple[str, ...]
) -> None:
    name = row.guest_name or "guest"
    subject = f"Your table for {row.party_size} is confirmed"
    body = (
        f"Hello {name},\n\nYour booking {booking_id} for a party of {row.party_size} at "
        f"{row.restaurant_id} on {row.start_at.isoformat()} is confirmed.\n"
        f"Table(s): {', '.join(tables)}\n\nSee you soon.\n"
    )
    await conn.execute(
        text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
            "VALUES (CAST(:id AS uuid), 'confirmation', :to, :subject, :body) "
            "ON CONFLICT (booking_id, kind) DO NOTHING"
        ),
        {"id": booking_id, "to": row.guest_email, "subject": subject, "body": body},
    )


async def booking_tables(conn: AsyncConnection, booking_id: str) -> tuple[str, ...]:
    rows = await conn.execute(
        text(
            "SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
            "WHERE a.booking_id = CAST(:id AS uuid) ORDER BY t.code"
        ),
        {"id": booking_id},
    )
    return tuple(rows.scalars().all())


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


def is_terminal(state: str) -> bool:
    return AssignmentState(state) in TERMINAL_STATES
