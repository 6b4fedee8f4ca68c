"""Guest messages exactly once, for every kind, on real PostgreSQL and Temporal:
a cancel during the confirmation's send, a booking cancelled after its
workflow closed, a second move during a send, a booking without an address,
an operator's resend (the CLI, for real), and a mail server that never
answers while bookings are being seated."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.booking import BookingActivities
from seatflow.cli.bookings import _render
from seatflow.config import Settings
from seatflow.domain.mail import Claim
from seatflow.domain.messages import EmailRequest, EmailResult
from seatflow.domain.planning import Plan
from seatflow.domain.states import AssignmentState
from seatflow.domain.workflow_ids import email_workflow_id
from seatflow.mail import MAIL_THREADS, FileMailbox, SmtpTransport, deliver
from seatflow.service.bookings import (
    AlreadyResolved,
    booking_view,
    cancel_booking_request,
    start_booking_workflow,
)
from seatflow.storage.attempts import AttemptSpec, SearchOutcome, run_attempt
from seatflow.storage.lifecycle import cancel_booking, verify_booking
from seatflow.storage.outbox import EmailInFlight, claim_email, mark_email_sent
from tests.cli_support import seatflow_cli
from tests.smtp_server import SmtpServer
from tests.support import fetch, floorplan, import_plan, new_booking, scalar, slot
from worker import build_worker

SENDER = "bookings@seatflow.local"


async def confirmed_booking(engine: AsyncEngine, unique_id: str, *,
                            email: str | None = "ada@guests.example.com") -> tuple[str, str]:
    """A booking seated by a real attempt (its confirmation queued), and its restaurant."""
    rid = f"msg-{unique_id}"
    await import_plan(engine, floorplan(rid, [{"id": "T1", "capacity": 2},
                                              {"id": "T2", "capacity": 2}]))
    booking = await new_booking(engine, rid, 2, email=email)
    if email is None:
        await _drop_address(engine, booking)
    ctx = await verify_booking(engine, booking, now=datetime.now(UTC))
    spec = AttemptSpec(booking_id=booking, restaurant_id=rid, expected_version=ctx.version,
                       attempt_no=1, on_failure=AssignmentState.ASSIGNMENT_PENDING,
                       max_parallel=3, slot_wait_seconds=2.0)
    plan = Plan(tables=("T1",), score=0.0, strategy="optimal_fit")
    done = await run_attempt(engine, spec, lambda _s, _r: SearchOutcome((plan,)))
    assert done.outcome == "confirmed"
    return booking, rid


async def _drop_address(engine: AsyncEngine, booking: str) -> None:
    """A booking taken without an address (phone booking): `new_booking`
    always gives one, so remove it."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE bookings SET guest_email = NULL "
                                "WHERE id = CAST(:b AS uuid)"), {"b": booking})


async def messages(engine: AsyncEngine, booking: str) -> dict[str, str]:
    rows = await fetch(engine, "SELECT kind, status FROM email_outbox "
                               "WHERE booking_id = CAST(:b AS uuid)", b=booking)
    return {r.kind: r.status for r in rows}


def subjects(server: SmtpServer) -> list[str]:
    return [" ".join(str(message_from_bytes(r.data.encode())["Subject"]).split())
            for r in server.received]


# --------------------------------------------------------------- cancellation


async def test_a_cancel_during_the_send_delivers_the_confirmation_then_one_cancellation(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str,
) -> None:
    rid = f"during-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2, email="ada@guests.example.com")
    queue = f"msg-{uuid.uuid4().hex[:8]}"
    client = time_skipping_env.client
    async with SmtpServer(data_delay=2.0) as server:
        transport = SmtpTransport("127.0.0.1", server.port, timeout=10)
        async with build_worker(client, db_engine, test_settings, task_queue=queue,
                                transport=transport):
            handle = await start_booking_workflow(
                client, booking_id=booking, restaurant_id=rid, party_size=2, start=slot(),
                task_queue=queue)
            while not server.rcpt_attempts:  # the confirmation is on the wire
                await asyncio.sleep(0.01)
            await handle.signal("cancel_booking", {"actor": "guest", "reason": "plans changed"})
            outcome = await asyncio.wait_for(handle.result(), timeout=120)
    assert outcome.state == "cancelled"
    sent = subjects(server)
    assert len(sent) == 2 and sent[0].endswith("is confirmed") and sent[1].endswith("is cancelled")
    assert await messages(db_engine, booking) == {"confirmation": "sent", "cancellation": "sent"}


async def test_a_booking_cancelled_after_its_workflow_closed_gets_one_cancellation(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str, mailbox: Path,
) -> None:
    rid = f"late-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    confirmed = await new_booking(db_engine, rid, 2, email="ada@guests.example.com")
    queue = f"msg-{uuid.uuid4().hex[:8]}"
    client = dev_env.client
    async with build_worker(client, db_engine, test_settings, task_queue=queue):
        handle = await start_booking_workflow(
            client, booking_id=confirmed, restaurant_id=rid, party_size=2, start=slot(),
            task_queue=queue)
        assert (await asyncio.wait_for(handle.result(), timeout=60)).state == "confirmed"
        view = await cancel_booking_request(db_engine, client, confirmed, actor="ops",
                                            reason="kitchen closed", task_queue=queue)
        assert view["assignment_state"] == "cancelled"
        sent = await asyncio.wait_for(client.get_workflow_handle(
            email_workflow_id(confirmed, "cancellation"), result_type=EmailResult).result(),
            timeout=60)
        with pytest.raises(AlreadyResolved):
            await cancel_booking_request(db_engine, client, confirmed, actor="ops",
                                         reason="again", task_queue=queue)
    assert sent.sent
    assert sorted(p.name for p in mailbox.glob("*.eml")) == sorted(
        [f"{confirmed}-confirmation.eml", f"{confirmed}-cancellation.eml"])
    assert "is cancelled" in (mailbox / f"{confirmed}-cancellation.eml").read_text()
    assert await messages(db_engine, confirmed) == {"confirmation": "sent",
                                                    "cancellation": "sent"}
    shown = await booking_view(db_engine, confirmed)
    assert [(m["kind"], m["status"]) for m in shown["messages"]] == [
        ("confirmation", "sent"), ("cancellation", "sent")]


async def test_only_a_guest_who_had_been_confirmed_gets_a_cancellation(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"never-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    waiting = await new_booking(db_engine, rid, 2, email="bo@guests.example.com")
    done = await cancel_booking(db_engine, waiting, actor="guest", reason=None)
    assert done.ok and not done.message_queued
    assert await messages(db_engine, waiting) == {}
    # Confirmed, but the confirmation not sent yet: it is withdrawn, and the
    # guest, who asked for the booking, is told it is cancelled.
    booking, _rid = await confirmed_booking(db_engine, unique_id + "b")
    done = await cancel_booking(db_engine, booking, actor="guest", reason=None)
    assert done.message_queued
    assert await messages(db_engine, booking) == {"confirmation": "withdrawn",
                                                  "cancellation": "pending"}


async def test_a_cancellation_waits_for_the_confirmation_in_flight_and_goes_after_it(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    booking, _rid = await confirmed_booking(db_engine, unique_id)
    confirmation = await claim_email(db_engine, booking, "confirmation")
    assert isinstance(confirmation, Claim)
    await cancel_booking(db_engine, booking, actor="guest", reason=None)
    with pytest.raises(EmailInFlight):  # never a cancellation before its confirmation
        await claim_email(db_engine, booking, "cancellation")
    assert await mark_email_sent(db_engine, confirmation)  # the claim still holds the row
    cancellation = await claim_email(db_engine, booking, "cancellation")
    assert isinstance(cancellation, Claim) and "cancelled" in cancellation.subject
    assert await mark_email_sent(db_engine, cancellation)
    assert await messages(db_engine, booking) == {"confirmation": "sent", "cancellation": "sent"}


async def test_claims_racing_for_one_message_give_exactly_one_claim(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    # The one-statement claim (outbox.CLAIM_AT_ONCE) locks the booking's
    # messages like the transaction did: of claims at once, one wins and the
    # others see it in flight; its token is the row's.
    booking, _rid = await confirmed_booking(db_engine, unique_id)
    results = await asyncio.gather(
        *(claim_email(db_engine, booking, "confirmation") for _ in range(6)),
        return_exceptions=True)
    claims = [r for r in results if isinstance(r, Claim)]
    assert len(claims) == 1, results
    assert all(isinstance(r, EmailInFlight) for r in results if r is not claims[0]), results
    async with db_engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT status, claim_token::text AS token, send_attempts FROM email_outbox "
            "WHERE booking_id = CAST(:id AS uuid) AND kind = 'confirmation'"),
            {"id": booking})).one()
    assert (row.status, row.token, row.send_attempts) == ("sending", claims[0].token, 0)
    assert await mark_email_sent(db_engine, claims[0])
    # sent: a further claim is a suppressed duplicate (the transaction's path)
    again = await claim_email(db_engine, booking, "confirmation")
    assert not isinstance(again, Claim) and again.duplicate


# ------------------------------------------------------- a move during a send


class RearmingTransport:
    """A mailbox whose first delivery is slow: while it is under way, a second
    move re-arms the row with a new message (what re-packing does)."""

    def __init__(self, directory: Path, rearm: Any, loop: asyncio.AbstractEventLoop):
        self.inner = FileMailbox(directory)
        self.rearm, self.loop = rearm, loop
        self.delivered: list[str] = []

    def deliver(self, key: str, message: EmailMessage) -> str:
        if not self.delivered:
            asyncio.run_coroutine_threadsafe(self.rearm(), self.loop).result(timeout=30)
        self.delivered.append(str(message["Subject"]))
        return self.inner.deliver(key, message)


async def test_a_second_move_during_a_send_is_not_marked_by_it_and_is_sent_after_it(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str, tmp_path: Path,
) -> None:
    booking, _rid = await confirmed_booking(db_engine, unique_id)
    async with db_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE email_outbox SET status = 'sent' WHERE booking_id = CAST(:b AS uuid)"),
            {"b": booking})
        await conn.execute(text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body) VALUES "
            "(CAST(:b AS uuid), 'table_changed', 'ada@guests.example.com', 'moved to T2', "
            "'Table T2')"), {"b": booking})

    async def second_move() -> None:
        # placement's re-arm of a table_changed row, as a second move writes it
        async with db_engine.begin() as conn:
            await conn.execute(text(
                "UPDATE email_outbox SET subject = 'moved to T3', body = 'Table T3', "
                "status = 'pending', claimed_at = NULL, failed_at = NULL, last_error = NULL, "
                "delivery_failures = 0, send_attempts = 0 "
                "WHERE booking_id = CAST(:b AS uuid) AND kind = 'table_changed'"),
                {"b": booking})

    transport = RearmingTransport(tmp_path, second_move, asyncio.get_running_loop())
    acts = BookingActivities(db_engine, transport, test_settings)
    result = await ActivityEnvironment().run(acts.send_confirmation_email,
                                             EmailRequest(booking, kind="table_changed"))
    assert result.sent
    # The first send delivered the old message but could not mark the new one
    # sent; the same send claimed again and delivered the new one after it.
    assert transport.delivered == ["moved to T2", "moved to T3"]
    row = (await fetch(db_engine, "SELECT status, send_attempts, claim_token FROM email_outbox "
                                  "WHERE booking_id = CAST(:b AS uuid) AND kind = "
                                  "'table_changed'", b=booking))[0]
    assert (row.status, row.send_attempts, row.claim_token) == ("sent", 1, None)


# ------------------------------------------------------------- no address


async def test_a_booking_without_an_address_sends_nothing_and_says_no_address(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str, tmp_path: Path,
) -> None:
    booking, _rid = await confirmed_booking(db_engine, unique_id, email=None)
    shown = await booking_view(db_engine, booking)
    assert shown["email"]["status"] == "no_address" and not shown["email"]["sent"]
    acts = BookingActivities(db_engine, FileMailbox(tmp_path), test_settings)
    result = await ActivityEnvironment().run(acts.send_confirmation_email, EmailRequest(booking))
    assert not result.sent and not result.failed and result.reason == "no address"
    assert not list(tmp_path.glob("*.eml"))
    assert await messages(db_engine, booking) == {"confirmation": "no_address"}
    assert "email       no address" in _render(await booking_view(db_engine, booking))
    done = await cancel_booking(db_engine, booking, actor="ops", reason=None)
    assert not done.message_queued and await messages(db_engine, booking) == {
        "confirmation": "no_address"}


# ----------------------------------------------------------------- resend


async def test_resend_email_sends_a_failed_confirmation_for_real(
    dev_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    pg_url: str, unique_id: str, mailbox: Path, tmp_path: Path,
) -> None:
    booking, _rid = await confirmed_booking(db_engine, unique_id)
    async with db_engine.begin() as conn:  # given up, as after half an hour of errors
        await conn.execute(text(
            "UPDATE email_outbox SET status = 'failed', delivery_failures = 20, "
            "last_error = 'gave up after 20 attempts: mail server unavailable' "
            "WHERE booking_id = CAST(:b AS uuid)"), {"b": booking})
    queue = f"resend-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_")}
    env.update(DATABASE_URL=pg_url, TEMPORAL_ADDRESS=dev_env.client.service_client.config
               .target_host, TEMPORAL_NAMESPACE=dev_env.client.namespace,
               SEATFLOW_TASK_QUEUE=queue)

    async def cli(*args: str) -> tuple[int, str]:
        done = await seatflow_cli().arun(["bookings", *args], env, cwd=tmp_path)
        return done.returncode, done.stdout + done.stderr

    async with build_worker(dev_env.client, db_engine, test_settings, task_queue=queue):
        code, out = await cli("resend-email", booking, "--actor", "maria")
        again_code, again = await cli("resend-email", booking)
    assert code == 0, out
    assert f"booking {booking}: confirmation message sent" in out
    assert [p.name for p in mailbox.glob("*.eml")] == [f"{booking}-confirmation.eml"]
    assert await messages(db_engine, booking) == {"confirmation": "sent"}
    resend = await fetch(db_engine, "SELECT context FROM observability_events WHERE booking_id "
                                    "= CAST(:b AS uuid) AND event_type = 'email.resend'",
                         b=booking)
    assert [(r[0]["actor"], r[0]["kind"]) for r in resend] == [("maria", "confirmation")]
    assert again_code == 1 and "was already sent" in again


# --------------------------------------------- a mail server that never answers


async def test_a_mail_server_that_never_answers_does_not_slow_seating(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    """Deliveries wait on their own pool: with every mail thread stuck on a
    server that accepts connections and never answers, an attempt holds its
    slot no longer than usual."""
    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, timeout=4)
    stuck = [asyncio.create_task(deliver(transport, Claim(
        0, str(uuid.uuid4()), "confirmation", "ada@guests.example.com", "s", "b", 1), SENDER))
        for _ in range(MAIL_THREADS * 3)]
    try:
        await asyncio.sleep(0.5)  # every mail thread is in a connection that never answers
        rid = f"silent-{unique_id}"
        await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
        holds = []
        for _ in range(3):
            booking = await new_booking(db_engine, rid, 2, start=slot(hour=12 + len(holds) * 3))
            ctx = await verify_booking(db_engine, booking, now=datetime.now(UTC))
            spec = AttemptSpec(booking_id=booking, restaurant_id=rid,
                               expected_version=ctx.version, attempt_no=2,
                               on_failure=AssignmentState.ASSIGNMENT_PENDING, max_parallel=1,
                               slot_wait_seconds=2.0)

            def search(_s: Any, _r: Any) -> SearchOutcome:
                time.sleep(0.02)  # a search
                return SearchOutcome((Plan(tables=("T1",), score=0.0, strategy="repack"),))

            started = time.perf_counter()
            done = await run_attempt(db_engine, spec, search)
            assert done.outcome == "confirmed", done.reason
            holds.append((done.hold_ms, (time.perf_counter() - started) * 1000))
        assert not any(t.done() for t in stuck)  # the mail server still sat on every one
    finally:
        server.close()
        results = await asyncio.gather(*stuck, return_exceptions=True)
    # Before mail had its own pool the stuck deliveries took asyncio's default
    # threads and an attempt held its slot until an SMTP timeout freed one.
    assert all(hold < 1000 and total < 2000 for hold, total in holds), holds
    assert all(isinstance(r, Exception) for r in results)  # each timed out, transiently
    assert await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r "
                        "AND assignment_state = 'confirmed'", r=rid) == 3
