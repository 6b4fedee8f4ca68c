"""Booking units of work: intake, verification, attempts, the atomic confirm,
cancellation. Each public function is one transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.assignment import ConfirmSpec, FailedAttempt
from seatflow.domain.guest import check_guest_email, check_guest_name
from seatflow.domain.messages import BookingContext, ConfirmResult, TransitionResult
from seatflow.domain.planning import BookingRequest, EngineConfig, Move, Plan
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.states import AssignmentState, IllegalTransition
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.engine.floor import DEFAULT_CONFIG
from seatflow.engine.validation import validate_plan
from seatflow.storage.permits import release as release_permit
from seatflow.storage.restaurants import load_policy, load_snapshot
from seatflow.storage.transitions import (
    BookingNotFound,
    VersionConflict,
    already_applied,
    change_tables,
    current_state,
    record_event,
    transition,
)

S = AssignmentState
# The old name of booking_workflow_id, still imported by bench/pipeline.py.
workflow_id_for = booking_workflow_id
EXCLUSION_VIOLATION = "23P01"
MANUAL_STRATEGY = "manual"  # the plan strategy of an operator's assignment


@dataclass(frozen=True)
class NewBooking:
    restaurant_id: str
    party_size: int
    start: datetime
    zone_preference: str | None = None
    guest_name: str | None = None
    guest_email: str | None = None
    booking_id: str | None = None
    # A caller-supplied key, unique per restaurant: a retry with the same key
    # returns the booking already created instead of creating a second one.
    idempotency_key: str | None = None


MAX_IDEMPOTENCY_KEY = 255


class IdempotencyConflict(InvalidBooking):
    """The key (or booking id) was already used for a different request."""

    def __init__(self, message: str, booking_id: str):
        super().__init__("idempotency_conflict", message)
        self.booking_id = booking_id


def request_fingerprint(new: NewBooking) -> str:
    """A hash of what was asked (not of who asked or when): a retry of the same
    request has the same fingerprint."""
    start = new.start
    when = start.astimezone(UTC).isoformat() if start.tzinfo else "local:" + start.isoformat()
    canonical = json.dumps(
        [new.restaurant_id, new.party_size, when, new.zone_preference, new.guest_name,
         new.guest_email],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(new: NewBooking) -> None:
    key = new.idempotency_key
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise InvalidBooking(
            "bad_idempotency_key",
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    if new.booking_id is not None:
        try:
            uuid.UUID(new.booking_id)
        except ValueError:
            raise InvalidBooking(
                "bad_booking_id", f"booking id {new.booking_id!r} is not a UUID"
            ) from None


async def _existing(conn: AsyncConnection, new: NewBooking, fingerprint: str) -> str | None:
    """The booking a previous call created for the same key (or booking id);
    raises IdempotencyConflict when that call asked for something else."""
    rows: Sequence[Any] = []
    if new.idempotency_key is not None:
        rows = (
            await conn.execute(
                text("SELECT id::text AS id, request_fingerprint FROM bookings "
                     "WHERE restaurant_id = :r AND idempotency_key = :k"),
                {"r": new.restaurant_id, "k": new.idempotency_key},
            )
        ).all()
    if not rows and new.booking_id is not None:
        rows = (
            await conn.execute(
                text("SELECT id::text AS id, request_fingerprint FROM bookings "
                     "WHERE id = CAST(:id AS uuid)"),
                {"id": new.booking_id},
            )
        ).all()
    if not rows:
        return None
    found = rows[0]
    if found.request_fingerprint != fingerprint:
        what = (f"idempotency key {new.idempotency_key!r}" if new.idempotency_key is not None
                else f"booking id {new.booking_id}")
        raise IdempotencyConflict(
            f"{what} was already used for a different booking request ({found.id}); "
            "use a new key for a new booking", found.id,
        )
    return str(found.id)


async def find_existing_booking(engine: AsyncEngine, new: NewBooking) -> str | None:
    """The booking already created for `new`'s idempotency key or booking id,
    None when there is none (or `new` has neither). Raises IdempotencyConflict."""
    _check_key(new)
    if new.idempotency_key is None and new.booking_id is None:
        return None
    async with engine.connect() as conn:
        return await _existing(conn, new, request_fingerprint(new))


async def insert_booking(engine: AsyncEngine, new: NewBooking, *, now: datetime) -> str:
    """Validate against the restaurant and insert the booking plus its intake row.

    Raises InvalidBooking (nothing written) when the booking can never be
    seated as asked: unknown restaurant, bad party, past, outside service, or
    a guest email that is not exactly one address (or a bad name).
    With an idempotency key (or a booking id) already used for the same
    request, returns that booking instead (see `insert_booking_once`).
    """
    booking_id, _created = await insert_booking_once(engine, new, now=now)
    return booking_id


async def insert_booking_once(
    engine: AsyncEngine, new: NewBooking, *, now: datetime
) -> tuple[str, bool]:
    """`insert_booking` that also says whether this call created the booking
    (False: a retry got the booking an earlier call with the same key made).

    Concurrent retries are safe: the unique (restaurant, key) constraint lets
    one insert win; the others wait for it and return its booking. A key used
    for a different request raises IdempotencyConflict; nothing is written.
    """
    _check_key(new)
    new = replace(new, guest_email=check_guest_email(new.guest_email),
                  guest_name=check_guest_name(new.guest_name))
    fingerprint = request_fingerprint(new)
    booking_id = new.booking_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        if new.idempotency_key is not None or new.booking_id is not None:
            existing = await _existing(conn, new, fingerprint)
            if existing is not None:
                return existing, False
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
        inserted = (
            await conn.execute(
                text(
                    "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                    "occupied_until, zone_preference, guest_name, guest_email, idempotency_key, "
                    "request_fingerprint) VALUES "
                    "(CAST(:id AS uuid), :r, :p, :s, :e, :o, :z, :n, :m, :k, :f) "
                    # A concurrent call with the same key or id won: use its booking.
                    "ON CONFLICT DO NOTHING RETURNING id"
                ),
                {"id": booking_id, "r": new.restaurant_id, "p": new.party_size, "s": window.start,
                 "e": window.end, "o": window.occupied_until, "z": new.zone_preference,
                 "n": new.guest_name, "m": new.guest_email, "k": new.idempotency_key,
                 "f": fingerprint},
            )
        ).first()
        if inserted is None:
            existing = await _existing(conn, new, fingerprint)
            if existing is None:  # the conflicting row is another booking's id
                raise IdempotencyConflict(
                    f"booking id {booking_id} is already taken", booking_id
                )
            return existing, False
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
            {"id": booking_id, "wf": booking_workflow_id(booking_id)},
        )
    return booking_id, True


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


class _NothingAllocated(Exception):
    """No plan could be allocated: roll back the moves made for it."""


async def _apply_moves(
    conn: AsyncConnection, booking_id: str, restaurant_id: str, moves: tuple[Move, ...]
) -> tuple[str, ...]:
    """Re-packing: move other confirmed bookings, inside the caller's savepoint
    (raises _PlanUnavailable, and the caller rolls back every move and the new
    allocation together). Each move is a versioned `change_tables` write. A
    booking an operator placed by hand (strategy `manual`) is never moved.
    Returns the moved bookings whose guest was already emailed and now has a
    `table_changed` email queued."""
    notify: list[str] = []
    for move in moves:
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
            raise _PlanUnavailable(f"booking {move.booking_id} is no longer confirmed")
        if row.assignment_strategy == MANUAL_STRATEGY:
            raise _PlanUnavailable(
                f"booking {move.booking_id} was placed by hand by an operator and is never moved"
            )
        held = await booking_tables(conn, move.booking_id)
        if tuple(held) != tuple(sorted(move.from_tables)):
            raise _PlanUnavailable(f"booking {move.booking_id} changed tables")
        await conn.execute(
            text("DELETE FROM allocations WHERE booking_id = CAST(:id AS uuid)"),
            {"id": move.booking_id},
        )
        to_tables = tuple(sorted(move.to_tables))
        why = await _allocate(
            conn, move.booking_id, restaurant_id, to_tables, row.start_at, row.occupied_until,
        )
        if why:
            raise _PlanUnavailable(why)
        try:
            await change_tables(
                conn, move.booking_id, int(row.assignment_state_version),
                from_tables=tuple(held), to_tables=to_tables,
                reason=f"repacked_for:{booking_id}", metadata={"repacked_for": booking_id},
            )
        except (VersionConflict, IllegalTransition) as exc:
            raise _PlanUnavailable(str(exc)) from None
        if await _tell_moved_guest(conn, move.booking_id, row, to_tables):
            notify.append(move.booking_id)
    return tuple(notify)


async def _tell_moved_guest(
    conn: AsyncConnection, booking_id: str, row: Any, tables: tuple[str, ...]
) -> bool:
    """A moved guest is never told the wrong tables: a confirmation still
    pending is rewritten with the new ones; one already claimed or sent is
    followed by a `table_changed` email. True when that email was queued."""
    confirmation = (
        await conn.execute(
            text("SELECT id, status FROM email_outbox WHERE booking_id = CAST(:id AS uuid) "
                 "AND kind = 'confirmation' FOR UPDATE"),
            {"id": booking_id},
        )
    ).one_or_none()
    if confirmation is not None and confirmation.status == "pending":
        subject, body = _confirmation_text(booking_id, row, tables)
        await conn.execute(
            text("UPDATE email_outbox SET subject = :subject, body = :body WHERE id = :id"),
            {"id": confirmation.id, "subject": subject, "body": body},
        )
        return False
    if confirmation is None:
        return False
    name = row.guest_name or "guest"
    body = (
        f"Hello {name},\n\nYour booking {booking_id} for a party of {row.party_size} at "
        f"{row.restaurant_id} on {row.start_at.isoformat()} is still confirmed, at a "
        f"different table.\nTable(s): {', '.join(tables)}\n\nSee you soon.\n"
    )
    await conn.execute(
        text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) "
            "VALUES (CAST(:id AS uuid), 'table_changed', :to, :subject, :body) "
            "ON CONFLICT (booking_id, kind) DO UPDATE SET subject = EXCLUDED.subject, "
            "body = EXCLUDED.body, status = 'pending', claimed_at = NULL, failed_at = NULL, "
            "last_error = NULL, delivery_failures = 0"
        ),
        {"id": booking_id, "to": row.guest_email, "body": body,
         "subject": f"Your table for {row.party_size} has changed"},
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
                        notify = await _apply_moves(
                            conn, req.booking_id, row.restaurant_id, req.moves)
                    except _PlanUnavailable as exc:
                        raise _PlanUnavailable(f"re-packing failed: {exc}") from None
                for plan in req.plans:
                    tables = tuple(sorted(plan.tables))
                    tried.append(tables)
                    why = await _allocate(conn, req.booking_id, row.restaurant_id, tables,
                                          row.start_at, row.occupied_until)
                    if why is None:
                        chosen = plan
                        break
                    reasons.append(why)
                if chosen is None:
                    raise _NothingAllocated
        except _PlanUnavailable as exc:
            reasons.append(str(exc))
            notify = ()
        except _NothingAllocated:
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
                     "actor": req.actor, "moves": len(req.moves), "force": forced is not None},
        )
        await _enqueue_confirmation_email(conn, req.booking_id, row, tables)
        await release_permit(conn, req.booking_id)
        return ConfirmResult(
            True, S.CONFIRMED.value, version, tables=tables, strategy=chosen.strategy,
            plans_tried=tuple(tried), notify=notify,
        )


def _confirmation_text(booking_id: str, row: Any, tables: tuple[str, ...]) -> tuple[str, str]:
    name = row.guest_name or "guest"
    subject = f"Your table for {row.party_size} is confirmed"
    body = (
        f"Hello {name},\n\nYour booking {booking_id} for a party of {row.party_size} at "
        f"{row.restaurant_id} on {row.start_at.isoformat()} is confirmed.\n"
        f"Table(s): {', '.join(tables)}\n\nSee you soon.\n"
    )
    return subject, body


async def _enqueue_confirmation_email(
    conn: AsyncConnection, booking_id: str, row: Any, tables: tuple[str, ...]
) -> None:
    subject, body = _confirmation_text(booking_id, row, tables)
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
