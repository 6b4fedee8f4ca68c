"""Sending booking emails from the outbox: exactly one per booking and kind,
with the mail server kept outside every database transaction.

The confirm transaction enqueues one `email_outbox` row per booking and kind
(unique key). Sending it takes three short steps:

1. claim: lock the booking's rows; skip the row when already `sent`
   (counting a suppressed duplicate), `failed`, without an address (marked
   `no_address`) or no longer true (a confirmation or table change of a
   cancelled booking: `withdrawn`; each kind is sent only in the state it
   speaks of); else mark it `sending` with a fresh claim token, and COMMIT;
2. deliver: hand the message to the transport, never inside a
   transaction: a mail server on the mail thread pool (`MAIL_THREADS`, never
   the event loop nor asyncio's default pool); the local file mailbox on
   the event loop's thread (`deliver`);
3. mark, only while the claim still holds the row: `sent` (one more
   `send_attempts`); or, counting one more `delivery_failures`, `failed`
   with a recorded `email.failed` event when the address is permanently
   undeliverable (invalid, SMTP 5xx) or transient errors outlasted
   `mail_max_attempts`, or back to `pending` with the (redacted) error, to
   be retried. A row re-armed during the send (a second move rewrote it) is
   not marked: the send claims again and delivers the newer message after.

A second attempt that finds a fresh claim on the row, or on another message
of the same booking, waits for it (retryable `storage.outbox.EmailInFlight`):
a guest's messages go one at a time, in order. A claim older than
`EMAIL_CLAIM_LEASE` is from a dead attempt and is sent again, counted in
`send_attempts` as a possible duplicate. The file transport names each
message after its booking and kind and replaces atomically, so the mailbox
holds exactly one message per row whatever crashes. SMTP cannot offer that: a
crash (or a lost connection) after the server accepted the message and before
step 3 commits sends it again when the claim expires. That window is
at-least-once by nature; the outbox keeps it to one extra message per crash,
and both copies carry the same Message-ID (`<{booking}-{kind}-{digest}@seatflow>`,
the digest of what the message says), which receiving systems use to drop the
duplicate; a message re-armed with new content (a second move) gets a new one.

Mail failures never touch the database circuit breaker; the caller gives them
a breaker of their own. No guest address leaves this module in an error:
messages are redacted before they are stored, raised or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import smtplib
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email import policy as email_policy
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import Policy
from email.utils import formataddr, parseaddr
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow import metrics
from seatflow.breaker import BreakerEvent, CircuitBreaker
from seatflow.domain.guest import email_problem
from seatflow.domain.mail import EMAIL_CLAIM_LEASE, ICS_FILENAME, Claim, NothingToSend
from seatflow.domain.messages import EmailResult
from seatflow.redact import redact
from seatflow.storage import outbox

# Deliveries run on this bounded pool of their own, never on asyncio's default
# one: a mail server that accepts connections and never answers holds at most
# these threads (each until the transport's timeout), while everything else in
# the process that runs on the default pool (asyncio's own DNS look-ups among
# them) keeps its threads.
MAIL_THREADS = 4
_mail_pool = ThreadPoolExecutor(max_workers=MAIL_THREADS, thread_name_prefix="seatflow-mail")
# Rounds of claim-deliver-mark in one send when the row keeps being re-armed
# under it (each round sends the newer message); then the send is retried.
MAX_SEND_ROUNDS = 3


class _FoldedOnce(BaseHeader):
    """A header that keeps its folded text per policy settings: folding is
    pure (the parse tree and the policy alone), and a header shared by many
    messages (`_HeaderClasses`) is then folded once, not once per message.
    Keyed by the settings, not the policy object: the generator clones the
    policy for every part it writes."""

    def fold(self, *, policy: Policy) -> str:
        folded: dict[tuple[object, ...], str] | None = self.__dict__.get("_folded")
        if folded is None:
            folded = self.__dict__["_folded"] = {}
        settings = (type(policy), *sorted(policy.__dict__.items()))
        text = folded.get(settings)
        if text is None:
            if len(folded) >= 4:  # a bound: our messages use one setting
                folded.clear()
            text = folded[settings] = super().fold(policy=policy)
        return text


# The headers every message repeats with the same value (the parts' types
# and encodings, the attachment's disposition; From, one per restaurant):
# parsed once and shared. Never a header that names the guest or the booking.
_SHARED_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version",
                             "content-disposition", "from"})
_SHARED_KEPT = 512  # a bound: a few per restaurant


class _HeaderClasses(HeaderRegistry):
    """The stdlib's header registry, making each header's class once: the
    stock one builds a new class with `type()` for every header set, about a
    third of composing a message (issue 27); and parsing each of the
    headers in `_SHARED_HEADERS` once per value (a multipart's boundary is
    new in every message: never kept). Header objects are immutable strings
    with their parse, so the classes, the headers and the message's bytes
    are the same as the stock registry's."""

    def __init__(self) -> None:
        super().__init__(base_class=_FoldedOnce)
        self._made: dict[str, type] = {}
        self._shared: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        if name.lower() not in _SHARED_HEADERS or "boundary=" in value:
            made: BaseHeader = self[name](name, value)
            return made
        key = (name, value)
        shared = self._shared.get(key)
        if shared is None:
            if len(self._shared) >= _SHARED_KEPT:
                self._shared.clear()
            shared = self._shared[key] = self[name](name, value)
        return shared


# email.policy.default with the header classes made once per name.
MESSAGE_POLICY = email_policy.default.clone(header_factory=_HeaderClasses())


class _Generator(BytesGenerator):
    """The stdlib's BytesGenerator, making a multipart's boundary the same way
    but checking it against the parts with a substring test first: the stock
    one compiles a regular expression for each new (random) boundary, a fifth
    of writing a message (issue 27), and pushes the patterns that are used
    again out of `re`'s cache. The boundary can only be on a line of the text
    if the text contains it: when it does not, the stock loop would take it
    at once; when it does, the stock loop runs, from the same boundary."""

    @classmethod
    def _make_boundary(cls, text: bytes | None = None) -> str:
        boundary: str = super()._make_boundary()  # type: ignore[misc]
        if text is None or f"--{boundary}".encode("ascii") not in text:
            return boundary
        found, counter = boundary, 0
        # the stock loop's pattern, compiled here rather than by the private
        # `_compile_re`: should a later Python rename `_make_boundary`, the
        # generator just stops calling this override (stock bytes, slower);
        # nothing here can fail on a rename
        while re.compile(("^--" + re.escape(found) + "(--)?$").encode("ascii"),
                         re.MULTILINE).search(text):
            found = f"{boundary}.{counter}"
            counter += 1
        return found


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it goes out: `bytes(message)`, written by `_Generator`."""
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=message.policy).flatten(message)
    return out.getvalue()


class MailTransport(Protocol):
    def deliver(self, key: str, message: EmailMessage) -> str: ...


def is_local(transport: MailTransport) -> bool:
    """A transport that talks to no outside system (the file mailbox): its
    sends may run as local activities, in the worker that runs the workflow."""
    return isinstance(transport, FileMailbox)


class FileMailbox:
    """One `.eml` file per message under a directory (default var/mailbox/)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def deliver(self, key: str, message: EmailMessage) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{key}.eml"
        tmp = self.directory / f".{key}.eml.tmp-{os.getpid()}"
        tmp.write_bytes(message_bytes(message))
        os.replace(tmp, final)  # atomic: the same key never yields two messages
        return str(final)


class SmtpTransport:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host = host
        self.port = port
        self.timeout = timeout

    def deliver(self, key: str, message: EmailMessage) -> str:
        """Blocking: call it from a thread (`deliver` below does)."""
        if "Message-ID" not in message:
            message["Message-ID"] = f"<{key}@seatflow>"
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            refused = smtp.send_message(message)
        if refused:  # some recipients refused, others accepted: we only ever send to one
            raise smtplib.SMTPRecipientsRefused(refused)
        return f"smtp://{self.host}:{self.port}/{key}"


# ------------------------------------------------------------- errors


class MailError(Exception):
    """A delivery failed. `permanent`: retrying cannot help (bad address, 5xx).
    The message is already redacted: no guest address in it."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


def _codes(exc: BaseException) -> list[int]:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return [int(code) for code, _ in exc.recipients.values()]
    if isinstance(exc, smtplib.SMTPResponseException):
        return [int(exc.smtp_code)]
    return []


def classify(exc: BaseException) -> MailError:
    """Sort a transport error: a 5xx reply about this message or recipient, or a
    message that cannot even be formed, is permanent; a 4xx reply, a refused or
    dropped connection, a timeout, or our own sender refused (a configuration
    problem, not the guest's) is transient."""
    codes = _codes(exc)
    detail = redact(f"{type(exc).__name__}: {exc}")[:300]
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return MailError(f"mail server refused our sender address: {detail}", permanent=False)
    if codes and all(500 <= code < 600 for code in codes):
        return MailError(f"mail server rejected the message permanently: {detail}",
                         permanent=True)
    if isinstance(exc, (ValueError, UnicodeError)) and not isinstance(exc, OSError):
        return MailError(f"message cannot be formed: {detail}", permanent=True)
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.gaierror, TimeoutError)):
        return MailError(f"mail server unavailable: {detail}", permanent=False)
    return MailError(f"unexpected mail error: {detail}", permanent=False)


# ------------------------------------------------------------- the steps


async def claim_outbox_email(
    engine: AsyncEngine, booking_id: str, kind: str, *, lease: timedelta = EMAIL_CLAIM_LEASE
) -> Claim | EmailResult:
    """Step 1, one short transaction: a Claim to deliver, or the result when
    there is nothing to send (no row, already sent, already failed). Raises
    EmailInFlight while another attempt's fresh claim holds the row."""
    claim = await outbox.claim_email(engine, booking_id, kind, lease=lease)
    if isinstance(claim, NothingToSend):
        return EmailResult(sent=False, duplicate=claim.duplicate, failed=claim.failed,
                           reason=claim.reason)
    return claim


@lru_cache(maxsize=256)  # one per restaurant: parsing it was a fifth of composing a message
def from_line(sender: str, name: str | None) -> str:
    """`Harbour Kitchen <bookings@...>`: the restaurant's name before the
    configured address, unless the setting names someone already."""
    display, address = parseaddr(sender)
    if display or not name or not address:
        return sender
    return formataddr((name, address))


def message_id(claim: Claim) -> str:
    """The same for every copy of one message (a re-send after a crash is a
    duplicate receivers can drop), new when the row says something new."""
    digest = hashlib.sha256(f"{claim.subject}\n{claim.body}".encode()).hexdigest()[:16]
    return f"<{claim.booking_id}-{claim.kind}-{digest}@seatflow>"


def build_message(claim: Claim, sender: str) -> EmailMessage:
    """The message for a claim, composed from its row alone: the plain text,
    the HTML part as its alternative, and the calendar event attached
    (text/calendar); MailError(permanent) when the stored address is not
    exactly one address (a row written before intake checked it)."""
    recipient = claim.recipient
    if recipient is None:  # the claim never hands one out; a guard, not a path
        raise MailError("the booking has no guest address", permanent=True)
    problem = email_problem(recipient)
    if problem is not None:
        raise MailError(f"guest address {problem}", permanent=True)
    try:
        message = EmailMessage(policy=MESSAGE_POLICY)
        message["From"] = from_line(sender, claim.sender_name)
        message["To"] = recipient
        message["Subject"] = claim.subject
        message["X-Seatflow-Booking"] = claim.booking_id
        message["Message-ID"] = message_id(claim)
        message.set_content(claim.body)
        if claim.html is not None:
            message.add_alternative(claim.html, subtype="html")
        if claim.ics is not None:
            message.add_attachment(claim.ics, subtype="calendar", filename=ICS_FILENAME,
                                   params={"method": "PUBLISH"})
    except (ValueError, TypeError) as exc:
        raise classify(exc) from None
    return message


async def deliver(transport: MailTransport, claim: Claim, sender: str) -> str:
    """Step 2: outside any transaction. Returns where the message went;
    raises MailError (redacted) when it did not.

    A mail server is talked to on the mail pool, off the event loop. The file
    mailbox (`is_local`) is written on the loop's own thread: a file written
    and renamed in a local directory, no fsync, where the hand-off to a pool
    thread and back cost more than the write. Under a burst of 100 bookings
    the pool's threads, serialising messages, contended for the GIL with the
    loop: the worker's CPU per booking was 2.3 ms lower over 16 rounds with
    the write on the loop (3.81 in one run of 8, 0.77 in the next; issue 27,
    docs/performance.md). A slow disk under the mailbox stalls the loop for
    as long as a write takes."""
    message = build_message(claim, sender)
    key = f"{claim.booking_id}-{claim.kind}"
    try:
        if is_local(transport):
            return transport.deliver(key, message)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_mail_pool, transport.deliver, key, message)
    except MailError:
        raise
    except Exception as exc:  # noqa: BLE001 - every transport error is sorted, none escapes raw
        raise classify(exc) from None


def publish_breaker_change(breaker: CircuitBreaker, before: str) -> None:
    """The mail breaker's state to the process-wide metrics, when it changed."""
    after = breaker.state
    if after == before:
        return
    if before == "closed" and after == "open":
        metrics.record_circuit_breaker_opened(breaker.name)
    else:
        metrics.set_circuit_breaker_state(breaker.name, after)


async def finish_claim(
    engine: AsyncEngine,
    claim: Claim,
    *,
    path: str | None = None,
    error: MailError | None = None,
    give_up: bool = False,
    breaker: CircuitBreaker | None = None,
) -> EmailResult | None:
    """Step 3: sent (path given), failed (permanent error, or `give_up`), or back
    to pending with the error (transient). Writes the mail breaker's pending
    events in the same transaction. None: the claim was superseded (the row
    was re-armed with a newer message, or re-claimed after the lease) and
    nothing was marked: claim again, to send the newer message after it."""
    written = breaker.take_events() if breaker is not None else []
    try:
        return await _mark(engine, claim, path, error, give_up, written)
    except BaseException:
        if breaker is not None:  # not written: kept for the breaker's next mark
            breaker.pending_events[:0] = written
        raise


async def _mark(engine: AsyncEngine, claim: Claim, path: str | None, error: MailError | None,
                give_up: bool, written: list[BreakerEvent]) -> EmailResult | None:
    if error is None:
        if not await outbox.mark_email_sent(engine, claim, breaker_events=written):
            return None
        return EmailResult(sent=True, duplicate=False, path=path)
    reason = str(error)
    if error.permanent or give_up:
        if not error.permanent:
            reason = f"gave up after {claim.attempts} attempts: {reason}"
        if not await outbox.mark_email_failed(engine, claim, reason, permanent=error.permanent,
                                              breaker_events=written):
            return None
        return EmailResult(sent=False, failed=True, reason=reason)
    if not await outbox.mark_email_pending(engine, claim, reason, breaker_events=written):
        return None
    return EmailResult(sent=False, reason=reason)


async def send_outbox_email(
    engine: AsyncEngine, transport: MailTransport, booking_id: str, kind: str, sender: str,
    *, max_attempts: int = 1,
) -> EmailResult:
    """Claim, deliver, mark, without a breaker or Temporal: for scripts and tests.
    A transient failure before `max_attempts` leaves the row pending and raises;
    a superseded send claims again (the newer message goes after it)."""
    for _ in range(MAX_SEND_ROUNDS):
        claim = await claim_outbox_email(engine, booking_id, kind)
        if isinstance(claim, EmailResult):
            return claim
        try:
            path = await deliver(transport, claim, sender)
        except MailError as error:
            result = await finish_claim(engine, claim, error=error,
                                        give_up=claim.attempts >= max_attempts)
            if result is None:
                continue
            if not result.failed:
                raise
            return result
        result = await finish_claim(engine, claim, path=path)
        if result is not None:
            return result
    raise outbox.EmailInFlight(booking_id, kind, 1.0)
