"""The atomic confirm: allocate the first plan still free (after any
re-packing moves), move the booking to assigned and confirmed, and write the
attempt row, the event and the confirmation email's outbox row, all in one
transaction. Also the allocation and re-packing steps the one-transaction
attempt (`storage.attempts`) shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.assignment import ConfirmSpec
from seatflow.domain.mail import EmailBooking, confirmation_email, table_changed_email
from seatflow.domain.messages import ConfirmResult
from seatflow.domain.planning import BookingRequest, EngineConfig, Move, Plan
from seatflow.domain.states import AssignmentState, IllegalTransition
from seatflow.engine.floor import DEFAULT_CONFIG
from seatflow.engine.validation import validate_plan
from seatflow.storage.lifecycle import record_attempt
from seatflow.storage.permits import release as release_permit
from seatflow.storage.restaurants import load_snapshot
from seatflow.storage.transitions import (
    BookingNotFound,
    VersionConflict,
    change_tables,
    record_event,
    transition,
)

S = AssignmentState
EXCLUSION_VIOLATION = "23P01"
MANUAL_STRATEGY = "manual"  # the plan strategy of an operator's assignment


async def allocate(
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
                raise PlanUnavailable(
                    f"tables {','.join(tables)}: unknown, inactive or out of service"
                )
    except PlanUnavailable as exc:
        return str(exc)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION or "23P01" in str(exc):
            return f"tables {','.join(tables)} taken by a concurrent booking"
        raise
    return None


class PlanUnavailable(Exception):
    pass


class NothingAllocated(Exception):
    """No plan could be allocated: roll back the moves made for it."""


async def apply_moves(
    conn: AsyncConnection, booking_id: str, restaurant_id: str, moves: tuple[Move, ...]
) -> tuple[str, ...]:
    """Re-packing: move other confirmed bookings, inside the caller's savepoint
    (raises PlanUnavailable, and the caller rolls back every move and the new
    allocation together). The moves are applied as one set: every moved
    booking is locked and checked first (still confirmed, not placed by hand,
    still on the tables the engine saw), then all of their allocations are
    released, then each takes its new tables. So a swap (bookings trading
    tables, where no move can go first) is as valid as a chain; the exclusion
    constraint still judges every new allocation, and a concurrent booking
    reaching for a released table waits for this transaction. Each move is a
    versioned `change_tables` write. Returns the moved bookings whose guest
    was already emailed and now has a `table_changed` email queued."""
    rows: dict[str, Any] = {}
    held: dict[str, tuple[str, ...]] = {}
    # lock in a fixed order, so two transactions moving overlapping sets
    # cannot deadlock on each other's rows
    for move in sorted(moves, key=lambda m: m.booking_id):
        if move.booking_id in rows:
            raise PlanUnavailable(f"booking {move.booking_id} is moved twice in one re-pack")
        row = (
            await conn.execute(
                text(
                    "SELECT id::text AS id, restaurant_id, party_size, start_at, occupied_until, "
                    "guest_name, guest_email, assignment_state, assignment_state_version, "
                    "assignment_strategy FROM bookings WHERE id = CAST(:id AS uuid) FOR UPDATE"
                ),
                {"id": move.booking_id},
            )
        ).one_or_none()
        if row is None or row.assignment_state != S.CONFIRMED:
            raise PlanUnavailable(f"booking {move.booking_id} is no longer confirmed")
        if row.restaurant_id != restaurant_id:
            raise PlanUnavailable(f"booking {move.booking_id} is at another restaurant")
        if row.assignment_strategy == MANUAL_STRATEGY:
            raise PlanUnavailable(
                f"booking {move.booking_id} was placed by hand by an operator and is never moved"
            )
        tables = await booking_tables(conn, move.booking_id)
        if tuple(tables) != tuple(sorted(move.from_tables)):
            raise PlanUnavailable(f"booking {move.booking_id} changed tables")
        rows[move.booking_id] = row
        held[move.booking_id] = tuple(tables)
    if not moves:
        return ()
    await conn.execute(
        text("DELETE FROM allocations WHERE booking_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": list(rows)},
    )
    notify: list[str] = []
    for move in moves:
        row = rows[move.booking_id]
        to_tables = tuple(sorted(move.to_tables))
        why = await allocate(
            conn, move.booking_id, restaurant_id, to_tables, row.start_at, row.occupied_until,
        )
        if why:
            raise PlanUnavailable(why)
        try:
            await change_tables(
                conn, move.booking_id, int(row.assignment_state_version),
                from_tables=held[move.booking_id], to_tables=to_tables,
                reason=f"repacked_for:{booking_id}", metadata={"repacked_for": booking_id},
            )
        except (VersionConflict, IllegalTransition) as exc:
            raise PlanUnavailable(str(exc)) from None
        if await _tell_moved_guest(conn, move.booking_id, row, to_tables):
            notify.append(move.booking_id)
    return tuple(notify)


async def _tell_moved_guest(
    conn: AsyncConnection, booking_id: str, row: Any, tables: tuple[str, ...]
) -> bool:
    """A moved guest is never told the wrong tables: a confirmation still
    pending is rewritten with the new ones; one already claimed or sent is
    followed by a `table_changed` email. True when that email was queued. A
    second move re-arms that email with the new tables: a new message, so its
    send and failure counts start again (an earlier one's delivery is not a
    duplicate of it; `seatflow report` counts duplicates from `send_attempts`)."""
    confirmation = (
        await conn.execute(
            text("SELECT id, status FROM email_outbox WHERE booking_id = CAST(:id AS uuid) "
                 "AND kind = 'confirmation' FOR UPDATE"),
            {"id": booking_id},
        )
    ).one_or_none()
    if confirmation is not None and confirmation.status == "pending":
        subject, body = confirmation_email(email_booking(booking_id, row), tables)
        await conn.execute(
            text("UPDATE email_outbox SET subject = :subject, body = :body WHERE id = :id"),
            {"id": confirmation.id, "subject": subject, "body": body},
        )
        return False
    if confirmation is None:
        return False
    subject, body = table_changed_email(email_booking(booking_id, row), tables)
    await conn.execute(
        text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
            "VALUES (CAST(:id AS uuid), 'table_changed', :to, :subject, :body) "
            "ON CONFLICT (booking_id, kind) DO UPDATE SET subject = EXCLUDED.subject, "
            "body = EXCLUDED.body, status = 'pending', claimed_at = NULL, failed_at = NULL, "
            "last_error = NULL, delivery_failures = 0, send_attempts = 0"
        ),
        {"id": booking_id, "to": row.guest_email, "subject": subject, "body": body},
    )
    return True


async def _manual_plan_problem(
    conn: AsyncConnection, req: ConfirmSpec, row: Any, config: EngineConfig
) -> tuple[str | None, str | None]:
    """An operator's plan, checked like any plan against the floor as it is now:
    (why it is refused, None) or (None, the rule `force` overrode, if any)."""
    if len(req.plans) != 1:
        return f"a manual assignment names one set of tables, got {len(req.plans)}", None
    tables = tuple(sorted(req.plans[0].tables))
    snapshot = await load_snapshot(conn, row.restaurant_id, row.start_at, row.occupied_until,
                                   exclude_booking=req.booking_id)
    request = BookingRequest(booking_id=req.booking_id, party_size=row.party_size,
                             start=row.start_at, end=row.occupied_until,
                             zone_preference=row.zone_preference)
    strict = validate_plan(snapshot, request, tables, config)
    if strict is None:
        return None, None
    forced = validate_plan(snapshot, request, tables, config, allow_overage_override=True,
                           allow_zone_override=True, allow_adjacency_override=True)
    if forced is not None:
        return forced, None  # capacity, fixed tables, a taken or inactive table: never
    if not req.force:
        return f"{strict} (an operator may override this with --force)", None
    return None, strict


async def confirm_plan(
    engine: AsyncEngine, req: ConfirmSpec, config: EngineConfig = DEFAULT_CONFIG
) -> ConfirmResult:
    """The atomic confirm: in one transaction, check the version, apply the
    re-packing moves and allocate the first plan that is still free (moves and
    allocation in one savepoint: both or neither), move the state to assigned
    then confirmed, record the attempt, the `booking.confirmed` event and the
    confirmation email in the outbox. When every plan was taken meanwhile,
    record a failed attempt instead, moving to `req.on_failure`. An operator's manual assignment is first
    checked like any plan (`config`'s rules; `req.force` overrides overage,
    zone and adjacency, recorded with the actor); refused, it changes nothing
    and reports why."""
    manual = req.actor is not None
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT restaurant_id, party_size, start_at, occupied_until, guest_name, "
                    "guest_email, zone_preference, assignment_state, assignment_state_version "
                    "FROM bookings WHERE id = CAST(:id AS uuid) FOR UPDATE"
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
        notify: tuple[str, ...] = ()
        forced: str | None = None
        if manual:
            problem, forced = await _manual_plan_problem(conn, req, row, config)
            if problem is not None:
                return ConfirmResult(False, state, version, reason=problem,
                                     plans_tried=tuple(tuple(sorted(p.tables)) for p in req.plans))
        try:
            async with conn.begin_nested():  # the moves and the allocation: both or neither
                if req.moves:
                    try:
                        notify = await apply_moves(
                            conn, req.booking_id, row.restaurant_id, req.moves)
                    except PlanUnavailable as exc:
                        raise PlanUnavailable(f"re-packing failed: {exc}") from None
                for plan in req.plans:
                    tables = tuple(sorted(plan.tables))
                    tried.append(tables)
                    why = await allocate(conn, req.booking_id, row.restaurant_id, tables,
                                          row.start_at, row.occupied_until)
                    if why is None:
                        chosen = plan
                        break
                    reasons.append(why)
                if chosen is None:
                    raise NothingAllocated
        except PlanUnavailable as exc:
            reasons.append(str(exc))
            notify = ()
        except NothingAllocated:
            notify = ()
        if chosen is None:
            reason = (
                f"all {len(tried)} plans were taken at confirm time" if tried and not manual
                else "; ".join(reasons) or "no plan to confirm"
            )
            if manual:
                return ConfirmResult(False, state, version, reason=reason, plans_tried=tuple(tried))
            to_state = S(req.on_failure)
            new_version = await transition(
                conn, req.booking_id, version, to_state, reason=reason,
                metadata={"attempt_no": req.attempt_no, "pipeline": req.pipeline},
            )
            await record_attempt(
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
        reason = f"manual assignment by {req.actor}" if manual else f"plan {','.join(tables)}"
        if forced is not None:
            meta["force"] = True
            meta["overridden"] = forced
            reason += f", forced over: {forced}"
        version = await transition(
            conn, req.booking_id, version, S.ASSIGNED, actor=req.actor, metadata=meta,
            reason=reason,
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
        await record_attempt(
            conn, req.booking_id, attempt_no=req.attempt_no, pipeline=req.pipeline,
            result="confirmed", reason=None, strategy=chosen.strategy, plans_tried=tuple(tried),
            permit_wait_ms=req.permit_wait_ms,
        )
        await record_event(
            conn, booking_id=req.booking_id, restaurant_id=row.restaurant_id,
            source="assignment.confirm", event_type="booking.confirmed",
            context={"tables": list(tables), "strategy": chosen.strategy,
                     "pipeline": req.pipeline, "attempt_no": req.attempt_no,
                     "actor": req.actor, "moves": len(req.moves), "force": forced is not None},
        )
        await _enqueue_confirmation_email(conn, req.booking_id, row, tables)
        await release_permit(conn, req.booking_id)
        return ConfirmResult(
            True, S.CONFIRMED.value, version, tables=tables, strategy=chosen.strategy,
            plans_tried=tuple(tried), notify=notify,
        )


async def _enqueue_confirmation_email(
    conn: AsyncConnection, booking_id: str, row: Any, tables: tuple[str, ...]
) -> None:
    subject, body = confirmation_email(email_booking(booking_id, row), tables)
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


def email_booking(booking_id: str, row: Any) -> EmailBooking:
    """What a guest's email says about a booking, from a booking row."""
    return EmailBooking(booking_id=booking_id, restaurant_id=row.restaurant_id,
                        party_size=row.party_size, start=row.start_at, guest_name=row.guest_name)
