"""The email outbox's writes (see `seatflow.mail` for the protocol): claim a
row, then mark it sent, failed, or pending again; and an operator's resend.
Each is one short transaction; the mail server is never called inside one.

A row's status: `pending` (to send), `sending` (claimed), `sent`, `failed`
(given up), `no_address` (the booking has no guest address: nothing is ever
sent), `withdrawn` (the booking left the state the message speaks of before
it was sent: a confirmation or table change of a cancelled booking).

Every claim writes a fresh `claim_token`; a mark names it and changes the row
only while that claim still holds it. A row re-armed during the send (a
second move rewrote the message: status back to `pending`) or re-claimed
after the lease is not marked by the old send, which learns it was
superseded and claims again, so the newer message goes after it. The token
stays on a re-armed row until its send ends, and a claim waits while any
message of the same booking is in flight: a guest's messages go one at a
time, in order (never a cancellation before the confirmation it cancels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.mail import EMAIL_CLAIM_LEASE, Claim, NothingToSend
from seatflow.domain.states import AssignmentState
from seatflow.storage.db import Driver, Statement, connection, statement
from seatflow.storage.transitions import BookingNotFound, record_event, write_breaker_events

if TYPE_CHECKING:
    from seatflow.breaker import BreakerEvent

S = AssignmentState

# The booking state each kind of message speaks of: it is sent only while the
# booking is in it. Both states a message can leave are final for it
# (confirmed -> cancelled only; cancelled is final), so a message withdrawn for
# a state change never becomes right again.
KIND_STATE = {"confirmation": S.CONFIRMED.value, "table_changed": S.CONFIRMED.value,
              "cancellation": S.CANCELLED.value}
KINDS = tuple(KIND_STATE)
NO_ADDRESS = "no address"


class EmailInFlight(Exception):
    """Another attempt claimed this email (or another message to the same
    guest) moments ago and may still be sending it."""

    def __init__(self, booking_id: str, kind: str, wait_seconds: float):
        super().__init__(f"{kind} email of booking {booking_id} waits for a send in flight")
        self.wait_seconds = wait_seconds


MESSAGES_OF_BOOKING = statement(
    "SELECT o.id, o.kind, o.recipient, o.subject, o.body, o.html, o.ics, o.status, "
    "o.delivery_failures, o.last_error, "
    # a claim made before claims had tokens holds a `sending` row by its claimed_at
    "COALESCE(o.claim_token_at, CASE WHEN o.status = 'sending' THEN o.claimed_at END) "
    "  > clock_timestamp() - make_interval(secs => :lease) AS in_flight, "
    "EXTRACT(EPOCH FROM COALESCE(o.claim_token_at, o.claimed_at) "
    "  + make_interval(secs => :lease) - clock_timestamp()) AS wait, "
    "b.assignment_state AS booking_state, r.name AS restaurant_name "
    "FROM email_outbox o JOIN bookings b ON b.id = o.booking_id "
    "JOIN restaurants r ON r.id = b.restaurant_id "
    # only the messages are locked: the booking row belongs to the state machine
    "WHERE o.booking_id = CAST(:id AS uuid) ORDER BY o.id FOR UPDATE OF o"
)


# The common claim in ONE statement, without BEGIN / COMMIT (issue 27): lock
# the booking's messages, and claim the row of :kind only when `claim_email`'s
# checks would let it through (pending or sending, an address, nothing of the
# booking in flight, the booking in the state the message speaks of). No row
# back: `claim_email` runs the full transaction, which says why.
CLAIM_AT_ONCE = statement(
    "WITH mine AS (SELECT o.id, o.kind, o.status, o.recipient, "
    "  COALESCE(o.claim_token_at, CASE WHEN o.status = 'sending' THEN o.claimed_at END) "
    "   > clock_timestamp() - make_interval(secs => :lease) AS in_flight "
    "  FROM email_outbox o WHERE o.booking_id = CAST(:id AS uuid) ORDER BY o.id FOR UPDATE), "
    "claimed AS (UPDATE email_outbox o SET status = 'sending', claimed_at = clock_timestamp(), "
    "  claim_token = gen_random_uuid(), claim_token_at = clock_timestamp(), "
    "  send_attempts = o.send_attempts + CASE WHEN o.status = 'sending' THEN 1 ELSE 0 END "
    "  FROM mine m WHERE o.id = m.id AND m.kind = :kind "
    "  AND m.status IN ('pending', 'sending') AND coalesce(m.recipient, '') <> '' "
    "  AND NOT EXISTS (SELECT 1 FROM mine x WHERE x.in_flight) "
    "  AND (CAST(:wanted AS text) IS NULL OR (SELECT b.assignment_state FROM bookings b "
    "       WHERE b.id = o.booking_id) = CAST(:wanted AS text)) "
    "  RETURNING o.id, o.booking_id, o.recipient, o.subject, o.body, o.html, o.ics, "
    "  o.delivery_failures, o.claim_token::text AS token) "
    "SELECT c.*, r.name AS restaurant_name FROM claimed c "
    "JOIN bookings b ON b.id = c.booking_id JOIN restaurants r ON r.id = b.restaurant_id"
)


COUNT_DUPLICATE = statement(
    "UPDATE email_outbox SET duplicates_suppressed = duplicates_suppressed + 1 WHERE id = :id")
CLAIM_ROW = statement(
    "UPDATE email_outbox SET status = 'sending', claimed_at = clock_timestamp(), "
    "claim_token = gen_random_uuid(), claim_token_at = clock_timestamp(), "
    "send_attempts = send_attempts + CASE WHEN status = 'sending' THEN 1 ELSE 0 END "
    "WHERE id = :id RETURNING claim_token::text")
SETTLE = statement(
    "UPDATE email_outbox SET status = :s, last_error = :e, claim_token = NULL, "
    "claim_token_at = NULL WHERE id = :id")


async def claim_email(
    engine: AsyncEngine, booking_id: str, kind: str, *, lease: timedelta = EMAIL_CLAIM_LEASE
) -> Claim | NothingToSend:
    """Lock the booking's messages; a Claim to deliver (the row is now
    `sending` with a fresh token, committed), or why there is nothing to send.
    Raises EmailInFlight while a claim younger than `lease` holds this row or
    another message of the same booking. The usual case is one statement
    (`CLAIM_AT_ONCE`); any other goes through the transaction below."""
    async with connection(engine, transaction=False) as conn:
        row = await CLAIM_AT_ONCE.row(conn, id=booking_id, kind=kind,
                                      lease=lease.total_seconds(), wanted=KIND_STATE.get(kind))
    if row is not None:
        return Claim(row["id"], booking_id, kind, row["recipient"], row["subject"], row["body"],
                     int(row["delivery_failures"]) + 1, html=row["html"], ics=row["ics"],
                     token=row["token"], sender_name=row["restaurant_name"])
    async with connection(engine) as conn:
        rows = await MESSAGES_OF_BOOKING.rows(conn, id=booking_id, lease=lease.total_seconds())
        row = next((r for r in rows if r["kind"] == kind), None)
        if row is None:
            return NothingToSend()
        if row["status"] == "sent":
            await COUNT_DUPLICATE.run(conn, id=row["id"])
            return NothingToSend(duplicate=True)
        if row["status"] == "failed":
            return NothingToSend(failed=True, reason=row["last_error"])
        if row["status"] == "no_address":
            return NothingToSend(reason=NO_ADDRESS)
        if row["status"] == "withdrawn":
            return NothingToSend(reason=row["last_error"])
        if not row["recipient"]:
            # A booking taken without an address: no message, and it says so.
            await _settle(conn, row["id"], "no_address", None)
            return NothingToSend(reason=NO_ADDRESS)
        in_flight = [r for r in rows if r["in_flight"]]
        if in_flight:
            # Its own send (possibly of an older version of it), or another
            # message to the same guest: wait, so messages go in order.
            wait = max(float(r["wait"] or 0) for r in in_flight)
            raise EmailInFlight(booking_id, kind, max(1.0, wait))
        wanted = KIND_STATE.get(kind)
        if wanted is not None and row["booking_state"] != wanted:
            if kind == "cancellation":  # never the case: written by the cancel itself
                return NothingToSend(reason=f"booking is {row['booking_state']}")
            reason = f"withdrawn: the booking is {row['booking_state']}"
            await _settle(conn, row["id"], "withdrawn", reason)
            await record_event(conn, booking_id=booking_id, source="mail",
                               event_type="email.withdrawn",
                               context={"kind": kind, "reason": reason})
            return NothingToSend(reason=reason)
        # A stale claim's attempt may have delivered before it died: counted as
        # a possible duplicate, which `seatflow report` shows.
        token = await CLAIM_ROW.value(conn, id=row["id"])
        return Claim(row["id"], booking_id, kind, row["recipient"], row["subject"], row["body"],
                     int(row["delivery_failures"]) + 1, html=row["html"], ics=row["ics"],
                     token=token, sender_name=row["restaurant_name"])


async def _settle(conn: Driver, outbox_id: int, status: str, reason: str | None) -> None:
    await SETTLE.run(conn, id=outbox_id, s=status, e=reason)


def _marked(assignments: str) -> Statement:
    """`assignments` when the claim (:id, :token) still holds the row."""
    return statement(
        f"UPDATE email_outbox SET {assignments}, claim_token = NULL, claim_token_at = NULL "
        "WHERE id = :id AND status = 'sending' AND claim_token = CAST(:token AS uuid) "
        "RETURNING id")


MARK_SENT = _marked("status = 'sent', sent_at = clock_timestamp(), "
                    "send_attempts = send_attempts + 1, last_error = NULL")
MARK_FAILED = _marked("status = 'failed', failed_at = clock_timestamp(), "
                      "delivery_failures = delivery_failures + 1, last_error = :e")
MARK_PENDING = _marked("status = 'pending', claimed_at = NULL, last_error = :e, "
                       "delivery_failures = delivery_failures + 1")
LET_GO = statement(
    "UPDATE email_outbox SET claim_token = NULL, claim_token_at = NULL "
    "WHERE id = :id AND claim_token = CAST(:token AS uuid)")


async def _mark(conn: Driver, claim: Claim, mark: Statement, **params: Any) -> bool:
    """`mark` when the claim still holds the row; otherwise only let go of
    the claim (a newer version of the message waits for it). False:
    superseded."""
    if await mark.row(conn, id=claim.outbox_id, token=claim.token, **params) is not None:
        return True
    await LET_GO.run(conn, id=claim.outbox_id, token=claim.token)
    return False


async def mark_email_sent(
    engine: AsyncEngine, claim: Claim, *, breaker_events: Sequence[BreakerEvent] = ()
) -> bool:
    """Sent. False: the claim was superseded (the row was re-armed with a new
    message, or re-claimed after the lease): claim again. Without breaker
    events to write it is one statement, so it runs without BEGIN / COMMIT
    (`_mark`'s fallback is a statement on its own either way)."""
    async with connection(engine, transaction=bool(breaker_events)) as conn:
        await write_breaker_events(conn, source="mail", events=breaker_events)
        return await _mark(conn, claim, MARK_SENT)


async def mark_email_failed(
    engine: AsyncEngine, claim: Claim, reason: str, *, permanent: bool,
    breaker_events: Sequence[BreakerEvent] = (),
) -> bool:
    """Given up: the row is `failed` for good, with an `email.failed` event.
    False: superseded, nothing recorded (the new message gets its own tries)."""
    async with connection(engine) as conn:
        await write_breaker_events(conn, source="mail", events=breaker_events)
        if not await _mark(conn, claim, MARK_FAILED, e=reason[:500]):
            return False
        await record_event(
            conn, booking_id=claim.booking_id, source="mail", event_type="email.failed",
            context={"kind": claim.kind, "reason": reason[:500], "attempts": claim.attempts,
                     "permanent": permanent},
        )
        return True


async def mark_email_pending(
    engine: AsyncEngine, claim: Claim, reason: str, *, breaker_events: Sequence[BreakerEvent] = ()
) -> bool:
    """A transient failure: back to `pending` with the (redacted) error, to
    retry. False: superseded (the row already waits with its new message)."""
    async with connection(engine) as conn:
        await write_breaker_events(conn, source="mail", events=breaker_events)
        return await _mark(conn, claim, MARK_PENDING, e=reason[:500])


# ------------------------------------------------------------------ resend


@dataclass(frozen=True)
class EmailRow:
    """What an operator's resend needs to know about one message."""

    kind: str
    status: str
    booking_state: str
    last_error: str | None


BOOKING_STATE = statement("SELECT assignment_state FROM bookings WHERE id = CAST(:id AS uuid)")
MESSAGE_OF_KIND = statement(
    "SELECT id, status, last_error FROM email_outbox "
    "WHERE booking_id = CAST(:id AS uuid) AND kind = :kind FOR UPDATE")
REARM = statement(
    "UPDATE email_outbox SET status = 'pending', delivery_failures = 0, "
    "failed_at = NULL, last_error = NULL, claimed_at = NULL WHERE id = :id")


async def rearm_email(engine: AsyncEngine, booking_id: str, kind: str, *,
                      actor: str) -> EmailRow | None:
    """An operator's resend: a `failed` message goes back to `pending` with
    fresh tries (an `email.resend` event names the actor and the error it had);
    any other row is left as it is. Returns the row as it was (None: the
    booking has no message of that kind). Raises BookingNotFound."""
    async with connection(engine) as conn:
        state = await BOOKING_STATE.value(conn, id=booking_id)
        if state is None:
            raise BookingNotFound(booking_id)
        row = await MESSAGE_OF_KIND.row(conn, id=booking_id, kind=kind)
        if row is None:
            return None
        found = EmailRow(kind, str(row["status"]), str(state), row["last_error"])
        if row["status"] == "failed" and state == KIND_STATE.get(kind):
            await REARM.run(conn, id=row["id"])
            await record_event(conn, booking_id=booking_id, source="mail",
                               event_type="email.resend",
                               context={"kind": kind, "actor": actor,
                                        "previous_error": row["last_error"]})
        return found
