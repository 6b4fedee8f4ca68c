"""Placing a booking on tables, inside the caller's transaction: the one
allocation statement, re-packing moves applied as one set, the confirm's
bookkeeping in one statement, and the check that finds an attempt already
committed (a retry after its commit). Both the automatic attempt and an
operator's assignment (`storage.attempts`) place through here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seatflow.domain.assignment import MANUAL_STRATEGY, AttemptOutcome
from seatflow.domain.mail import (
    EmailBooking,
    GuestEmail,
    confirmation_email,
    table_changed_email,
)
from seatflow.domain.planning import Move, Plan
from seatflow.domain.states import AssignmentState, IllegalTransition
from seatflow.storage.db import Driver, statement
from seatflow.storage.restaurants import LIVE_HOLD, UNSEATED_STATES, take_holds_gate_shared
from seatflow.storage.transitions import (
    BookingNotFound,
    Step,
    VersionConflict,
    change_tables,
    transitions,
)

S = AssignmentState

# A plan's tables in one statement, without a savepoint: the exclusion
# constraint's conflicts are skipped (ON CONFLICT DO NOTHING applies to
# exclusion constraints too), and a plan that got fewer rows than tables is
# removed again before the next plan is tried.
ALLOCATE = statement(
    "INSERT INTO allocations (booking_id, restaurant_id, table_id, occupied) "
    "SELECT CAST(:b AS uuid), :r, t.id, tstzrange(:s, :e, '[)') "
    "FROM dining_tables t JOIN zones z ON z.restaurant_id = t.restaurant_id "
    "AND z.id = t.zone_id WHERE t.restaurant_id = :r AND t.code = ANY(:codes) "
    "AND t.active AND z.active AND t.status = 'available' "
    # a live hold of anyone else takes its tables (storage.holds)
    "AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.restaurant_id = :r "
    "  AND t.id = ANY(h.table_ids) AND h.occupied && tstzrange(:s, :e, '[)') "
    "  AND h.booking_id IS DISTINCT FROM CAST(:b AS uuid) AND " + LIVE_HOLD + ") "
    "ON CONFLICT DO NOTHING RETURNING table_id"
)
RELEASE = statement("DELETE FROM allocations WHERE booking_id = ANY(CAST(:ids AS uuid[]))")
COUNT_MOVE = statement(
    "UPDATE bookings SET times_moved = times_moved + 1 WHERE id = ANY(CAST(:ids AS uuid[]))")

# The bookkeeping of a confirm, in one statement: confirmed_at, the attempt
# row, the booking.confirmed event (which names the moved guests to tell, so
# a retry after the commit can report them), the slot's interval when a slot
# was held, and the confirmation email in the outbox.
CONFIRM_BOOKKEEPING = statement(
    "WITH ts AS (UPDATE bookings SET confirmed_at = clock_timestamp() "
    "  WHERE id = CAST(:id AS uuid) RETURNING id), "
    "att AS (INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, "
    "  strategy, result, reason, plans_tried, permit_wait_ms) VALUES (CAST(:id AS uuid), :n, "
    "  :p, :s, 'confirmed', NULL, CAST(:plans AS jsonb), :w) "
    "  ON CONFLICT (booking_id, pipeline, attempt_no) DO NOTHING), "
    "ev AS (INSERT INTO observability_events (booking_id, restaurant_id, source, event_type, "
    "  context) VALUES (CAST(:id AS uuid), :r, 'assignment.confirm', 'booking.confirmed', "
    "  CAST(:ctx AS jsonb))), "
    "iv AS (INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
    "  released_at, wait_ms) SELECT :r, CAST(:id AS uuid), :slot, :acq, clock_timestamp(), :w "
    "  WHERE CAST(:slot AS integer) IS NOT NULL), "
    "em AS (INSERT INTO email_outbox (booking_id, kind, recipient, subject, body, html, ics) "
    "  VALUES (CAST(:id AS uuid), 'confirmation', :to, :subject, :body, :html, :ics) "
    "  ON CONFLICT (booking_id, kind) DO NOTHING), "
    "hd AS (DELETE FROM holds WHERE booking_id = CAST(:id AS uuid)) "  # seated: its hold is done
    "SELECT 1"
)
FAILED_BOOKKEEPING = statement(
    "WITH att AS (INSERT INTO booking_assignment_attempts (booking_id, attempt_no, pipeline, "
    "  strategy, result, reason, plans_tried, permit_wait_ms) VALUES (CAST(:id AS uuid), :n, "
    "  :p, NULL, :res, :reason, CAST(:plans AS jsonb), :w) "
    "  ON CONFLICT (booking_id, pipeline, attempt_no) DO NOTHING), "
    "iv AS (INSERT INTO permit_intervals (restaurant_id, booking_id, slot, acquired_at, "
    "  released_at, wait_ms) SELECT :r, CAST(:id AS uuid), :slot, :acq, clock_timestamp(), :w "
    "  WHERE CAST(:slot AS integer) IS NOT NULL) "
    "SELECT 1"
)
COMMITTED_ATTEMPT = statement(
    "SELECT a.result, a.reason, a.strategy, "
    " (SELECT e.context FROM observability_events e WHERE e.booking_id = a.booking_id "
    "  AND e.event_type = 'booking.confirmed' ORDER BY e.id DESC LIMIT 1) AS confirmed "
    "FROM booking_assignment_attempts a WHERE a.booking_id = CAST(:id AS uuid) "
    "AND a.pipeline = :p AND a.attempt_no = :n"
)


class PlanUnavailable(Exception):
    """A re-pack or a plan can no longer be applied as the engine saw it."""


class _NothingPlaced(Exception):
    """No plan could be allocated: roll back the moves made for it."""


@dataclass(frozen=True)
class Placed:
    """What placing came to: the plan allocated (None: none could be), the
    plans tried in order, why each was refused, and the moved bookings whose
    guest was promised a table, already emailed, and now has a
    `table_changed` email queued (never, unless the restaurant promises tables)."""

    chosen: Plan | None
    tried: tuple[tuple[str, ...], ...] = ()
    reasons: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class Committed:
    """An attempt found already committed (a retry after its commit)."""

    outcome: AttemptOutcome
    reason: str | None = None
    tables: tuple[str, ...] = ()
    strategy: str | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bookkeeping:
    """What the attempt row, the event and the slot interval say."""

    attempt_no: int
    pipeline: str
    wait_ms: float | None = None
    slot: int | None = None
    acquired_at: datetime | None = None
    actor: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # extra event context


async def allocate(conn: Driver, booking_id: str, restaurant_id: str,
                   tables: tuple[str, ...], start: datetime, until: datetime) -> str | None:
    """Allocate `tables` to the booking; None on success, else why not (and
    nothing of the plan is left allocated). The exclusion constraint decides
    races with concurrent bookings."""
    got = await ALLOCATE.rows(conn, b=booking_id, r=restaurant_id, s=start, e=until,
                              codes=list(tables), unseated=UNSEATED_STATES)
    if len(got) == len(tables):
        return None
    if got:
        await RELEASE.run(conn, ids=[booking_id])
    return f"tables {','.join(tables)} taken by a concurrent booking, held or out of service"


async def place(conn: Driver, booking_id: str, restaurant_id: str,
                plans: tuple[Plan, ...], moves: tuple[Move, ...], start: datetime,
                until: datetime, *, gated: bool = False) -> Placed:
    """Allocate the first plan still free. With re-packing moves, the moves and
    the allocation share one savepoint: both or neither. Takes the
    restaurant's holds gate shared first (unless `gated`: the attempt's read
    took it), so a hold being granted is seen (`storage.holds`)."""
    if not gated:
        await take_holds_gate_shared(conn, restaurant_id)
    tried: list[tuple[str, ...]] = []
    reasons: list[str] = []

    async def first_free() -> Plan | None:
        for candidate in plans:
            tables = tuple(sorted(candidate.tables))
            tried.append(tables)
            why = await allocate(conn, booking_id, restaurant_id, tables, start, until)
            if why is None:
                return candidate
            reasons.append(why)
        return None

    if not moves:
        chosen = await first_free()
        return Placed(chosen, tuple(tried), tuple(reasons))
    try:
        async with conn.transaction():  # inside the attempt's: a savepoint
            try:
                notify = await apply_moves(conn, booking_id, restaurant_id, moves)
            except PlanUnavailable as exc:
                raise PlanUnavailable(f"re-packing failed: {exc}") from None
            chosen = await first_free()
            if chosen is None:
                raise _NothingPlaced  # the moves were for nothing: roll them back
    except PlanUnavailable as exc:
        return Placed(None, tuple(tried), (*reasons, str(exc)))
    except _NothingPlaced:
        return Placed(None, tuple(tried), tuple(reasons))
    return Placed(chosen, tuple(tried), tuple(reasons), notify)


MOVED_BOOKING = statement(
    "SELECT id::text AS id, restaurant_id, party_size, start_at, occupied_until, "
    "guest_name, guest_email, assignment_state, assignment_state_version, "
    "assignment_strategy, "
    "(SELECT r.promises_tables FROM restaurants r WHERE r.id = bookings.restaurant_id) "
    "  AS promises_tables, "
    "ARRAY(SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
    "  WHERE a.booking_id = bookings.id ORDER BY t.code) AS tables "
    "FROM bookings WHERE id = CAST(:id AS uuid) FOR UPDATE"
)


async def apply_moves(conn: Driver, booking_id: str, restaurant_id: str,
                      moves: tuple[Move, ...]) -> tuple[str, ...]:
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
    was promised a table, already emailed, and now has a `table_changed`
    email queued."""
    rows: dict[str, Any] = {}
    # lock in a fixed order, so two transactions moving overlapping sets
    # cannot deadlock on each other's rows
    for move in sorted(moves, key=lambda m: m.booking_id):
        if move.booking_id in rows:
            raise PlanUnavailable(f"booking {move.booking_id} is moved twice in one re-pack")
        row = await MOVED_BOOKING.row(conn, id=move.booking_id)
        if row is None or row["assignment_state"] != S.CONFIRMED:
            raise PlanUnavailable(f"booking {move.booking_id} is no longer confirmed")
        if row["restaurant_id"] != restaurant_id:
            raise PlanUnavailable(f"booking {move.booking_id} is at another restaurant")
        if row["assignment_strategy"] == MANUAL_STRATEGY:
            raise PlanUnavailable(
                f"booking {move.booking_id} was placed by hand by an operator and is never moved"
            )
        if tuple(row["tables"]) != tuple(sorted(move.from_tables)):
            raise PlanUnavailable(f"booking {move.booking_id} changed tables")
        rows[move.booking_id] = row
    if not moves:
        return ()
    await RELEASE.run(conn, ids=list(rows))
    await COUNT_MOVE.run(conn, ids=list(rows))
    notify: list[str] = []
    for move in moves:
        row = rows[move.booking_id]
        to_tables = tuple(sorted(move.to_tables))
        why = await allocate(conn, move.booking_id, restaurant_id, to_tables, row["start_at"],
                             row["occupied_until"])
        if why:
            raise PlanUnavailable(why)
        try:
            await change_tables(
                conn, move.booking_id, int(row["assignment_state_version"]),
                from_tables=tuple(row["tables"]), to_tables=to_tables,
                reason=f"repacked_for:{booking_id}", metadata={"repacked_for": booking_id},
            )
        except (VersionConflict, IllegalTransition) as exc:
            raise PlanUnavailable(str(exc)) from None
        if await _tell_moved_guest(conn, move.booking_id, row, to_tables):
            notify.append(move.booking_id)
    return tuple(notify)


CONFIRMATION_OF = statement(
    "SELECT id, status FROM email_outbox WHERE booking_id = CAST(:id AS uuid) "
    "AND kind = 'confirmation' FOR UPDATE")
REWRITE_CONFIRMATION = statement(
    "UPDATE email_outbox SET subject = :subject, body = :body, html = :html, ics = :ics "
    "WHERE id = :id")
# A new message, so its send and failure counts start again (an earlier
# one's delivery is not a duplicate of it; `seatflow report` counts
# duplicates from `send_attempts`).
QUEUE_TABLE_CHANGED = statement(
    "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body, html, ics) "
    "VALUES (CAST(:id AS uuid), 'table_changed', :to, :subject, :body, :html, :ics) "
    "ON CONFLICT (booking_id, kind) DO UPDATE SET subject = EXCLUDED.subject, "
    "body = EXCLUDED.body, html = EXCLUDED.html, ics = EXCLUDED.ics, "
    "status = 'pending', claimed_at = NULL, failed_at = NULL, "
    "last_error = NULL, delivery_failures = 0, send_attempts = 0")


async def _tell_moved_guest(conn: Driver, booking_id: str, row: Any,
                            tables: tuple[str, ...]) -> bool:
    """Re-packing is invisible to guests: the confirmation names no table, so a
    move changes nothing a guest was told, unless the restaurant promises
    tables (`row["promises_tables"]`). Then a guest whose promised tables changed
    is never told the wrong ones: a confirmation still pending is rewritten
    with the new ones; one already claimed or sent is followed by a
    `table_changed` email. True when that email was queued. Re-packing moves
    a booking at most once an evening (`bookings.times_moved`), so that is
    at most one such message per booking."""
    if not row["promises_tables"] or tuple(row["tables"]) == tables:
        return False
    confirmation = await CONFIRMATION_OF.row(conn, id=booking_id)
    if confirmation is None:
        return False
    booking = await email_booking(conn, booking_id)
    if confirmation["status"] == "pending":
        await REWRITE_CONFIRMATION.run(conn, id=confirmation["id"],
                                       **_parts(confirmation_email(booking)))
        return False
    await QUEUE_TABLE_CHANGED.run(conn, id=booking_id, to=row["guest_email"],
                                  **_parts(table_changed_email(booking)))
    return True


async def confirm_placed(conn: Driver, booking_id: str, row: Any,
                         current: AssignmentState, version: int, placed: Placed,
                         book: Bookkeeping, *, reason: str,
                         metadata: dict[str, Any], lead: tuple[Step, ...] = ()
                         ) -> tuple[tuple[str, ...], int]:
    """The booking on its placed plan: `lead` (an attempt's
    assignment_in_progress), assigned then confirmed (versioned transitions in
    one statement), then the bookkeeping in one statement. `row` is the
    locked booking row (restaurant, start, guest), `current` and `version`
    its state now. Returns the tables and the new version."""
    assert placed.chosen is not None
    chosen = placed.chosen
    tables = tuple(sorted(chosen.tables))
    version = await transitions(
        conn, booking_id, version, current, [
            *lead,
            Step(S.ASSIGNED, reason=reason, actor=book.actor,
                 metadata={"tables": list(tables), "strategy": chosen.strategy,
                           "score": chosen.score, "attempt_no": book.attempt_no,
                           "pipeline": book.pipeline, **metadata}),
            Step(S.CONFIRMED, reason="confirmed", actor=book.actor),
        ],
        set_columns={"status": "confirmed", "assignment_strategy": chosen.strategy,
                     "assignment_pipeline": book.pipeline},
    )
    message = confirmation_email(await email_booking(conn, booking_id))
    await CONFIRM_BOOKKEEPING.run(
        conn, **_common(booking_id, row["restaurant_id"], book, placed.tried),
        s=chosen.strategy, to=row["guest_email"], **_parts(message),
        ctx=json.dumps({"tables": list(tables), "strategy": chosen.strategy,
                        "pipeline": book.pipeline, "attempt_no": book.attempt_no,
                        "actor": book.actor, "notify": list(placed.notify),
                        **book.context}))
    return tables, version


async def record_failed(conn: Driver, booking_id: str, restaurant_id: str,
                        placed: Placed, book: Bookkeeping, reason: str) -> None:
    """The failed attempt's row and slot interval (its transition is the caller's)."""
    await FAILED_BOOKKEEPING.run(
        conn, **_common(booking_id, restaurant_id, book, placed.tried),
        res="all_plans_taken" if placed.tried else "no_plan", reason=reason)


def _common(booking_id: str, restaurant_id: str, book: Bookkeeping,
            tried: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    return {"id": booking_id, "n": book.attempt_no, "p": book.pipeline,
            "plans": json.dumps([list(t) for t in tried]),
            "w": None if book.wait_ms is None else round(book.wait_ms, 3),
            "r": restaurant_id, "slot": book.slot, "acq": book.acquired_at}


async def committed_attempt(conn: Driver, booking_id: str, pipeline: str,
                            attempt_no: int, state: str) -> Committed | None:
    """The attempt, when it already committed (the worker died, or the call
    timed out, after its commit): what it did, moved guests included. None
    when it did not run."""
    done = await COMMITTED_ATTEMPT.row(conn, id=booking_id, p=pipeline, n=attempt_no)
    if done is None:
        return None
    if done["result"] != "confirmed":
        return Committed(AttemptOutcome.FAILED, reason=done["reason"])
    if state != S.CONFIRMED:
        return None  # confirmed once, changed since (cancelled): not this attempt's answer
    context = _json(done["confirmed"]) or {}
    return Committed(AttemptOutcome.CONFIRMED, tables=tuple(context.get("tables") or ()),
                     strategy=done["strategy"], notify=tuple(context.get("notify") or ()))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# What a guest's message says about a booking, read inside the writer's
# transaction (so a fresh allocation's tables are seen): the restaurant's name
# and zone, the name of the zone the guest asked for, and, only when the
# restaurant promises tables, the tables and their zone(s).
EMAIL_BOOKING = statement(
    "SELECT r.name AS restaurant_name, r.timezone, r.promises_tables, b.party_size, "
    "b.start_at, b.end_at, b.guest_name, z.name AS zone, clock_timestamp() AS stamp, "
    "ARRAY(SELECT t.code FROM allocations a JOIN dining_tables t ON t.id = a.table_id "
    "  WHERE a.booking_id = b.id ORDER BY t.code) AS tables, "
    "(SELECT string_agg(DISTINCT tz.name, ', ') FROM allocations a "
    "  JOIN dining_tables t ON t.id = a.table_id JOIN zones tz "
    "  ON tz.restaurant_id = t.restaurant_id AND tz.id = t.zone_id "
    "  WHERE a.booking_id = b.id) AS table_zone "
    "FROM bookings b JOIN restaurants r ON r.id = b.restaurant_id "
    "LEFT JOIN zones z ON z.restaurant_id = b.restaurant_id AND z.id = b.zone_preference "
    "WHERE b.id = CAST(:id AS uuid)"
)


async def email_booking(conn: Driver, booking_id: str) -> EmailBooking:
    """What a guest's message says about a booking, for `confirmation_email`,
    `table_changed_email` or `cancellation_email` (seatflow.domain.mail)."""
    row = await EMAIL_BOOKING.row(conn, id=booking_id)
    if row is None:
        raise BookingNotFound(booking_id)
    promised = bool(row["promises_tables"])
    return EmailBooking(
        booking_id=booking_id, restaurant_name=row["restaurant_name"],
        timezone=row["timezone"], party_size=row["party_size"], start=row["start_at"],
        end=row["end_at"], stamp=row["stamp"], guest_name=row["guest_name"], zone=row["zone"],
        tables=tuple(row["tables"]) if promised else (),
        table_zone=row["table_zone"] if promised else None,
    )


def _parts(message: GuestEmail) -> dict[str, str | None]:
    """A message as the outbox's columns."""
    return {"subject": message.subject, "body": message.text, "html": message.html,
            "ics": message.ics}
