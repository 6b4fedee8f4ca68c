"""The email step against a real SMTP server (tests/smtp_server.py) and real
PostgreSQL: one address per booking, permanent failures recorded and final,
transient ones bounded, SMTP outside transactions and off the event loop, a
breaker of its own, and no guest address in Temporal or breaker events."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.booking import BookingActivities
from seatflow.config import Settings
from seatflow.domain.intake import NewBooking
from seatflow.domain.mail import confirmation_email
from seatflow.domain.messages import EmailRequest, EmailResult
from seatflow.domain.restaurant import InvalidBooking
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.mail import SmtpTransport
from seatflow.service.bookings import start_booking_workflow
from seatflow.storage.db import driver
from seatflow.storage.placement import email_booking
from tests.smtp_server import SmtpServer
from tests.support import fetch, floorplan, import_plan, insert_booking, new_booking, scalar, slot
from worker import build_worker


def address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@guests.example.com"


async def outbox_booking(engine: AsyncEngine, unique_id: str, email: str) -> str:
    """A booking with its confirmation queued, as the confirm transaction leaves it."""
    rid = f"mail-{unique_id}"
    await import_plan(engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(engine, rid, 2, email=email)
    async with engine.begin() as conn:
        # Confirmed, as the confirm transaction leaves it: the email step never
        # sends a confirmation for a booking that is not (or no longer) confirmed.
        await conn.execute(text(
            "UPDATE bookings SET assignment_state = 'confirmed', status = 'confirmed' "
            "WHERE id = CAST(:b AS uuid)"), {"b": booking})
        message = confirmation_email(await email_booking(await driver(conn), booking))
        await conn.execute(text(
            "INSERT INTO email_outbox (booking_id, kind, recipient, subject, body, html, ics) "
            "VALUES (CAST(:b AS uuid), 'confirmation', :to, :subject, :body, :html, :ics)"),
            {"b": booking, "to": email, "subject": message.subject, "body": message.text,
             "html": message.html, "ics": message.ics})
    return booking


def activities_for(
    engine: AsyncEngine, settings: Settings, server: SmtpServer, **overrides: Any,
) -> BookingActivities:
    settings = settings.model_copy(update=overrides)
    return BookingActivities(engine, SmtpTransport("127.0.0.1", server.port, timeout=5), settings)


async def outbox(engine: AsyncEngine, booking: str) -> dict[str, object]:
    rows = await fetch(engine, "SELECT status, send_attempts, delivery_failures, last_error "
                               "FROM email_outbox "
                               "WHERE booking_id = CAST(:b AS uuid)", b=booking)
    return dict(rows[0]._mapping)


async def events(
    engine: AsyncEngine, booking: str | None, event_type: str,
) -> list[dict[str, object]]:
    rows = await fetch(engine, "SELECT context FROM observability_events WHERE event_type = :t "
                               "AND (CAST(:b AS uuid) IS NULL OR booking_id = CAST(:b AS uuid)) "
                               "ORDER BY id", t=event_type, b=booking)
    return [r[0] for r in rows]


# ----------------------------------------------------------------- intake


@pytest.mark.parametrize("bad", [
    "a@x.com, victim@y.com",
    "a@x.com;victim@y.com",
    "a@x.com\r\nBcc: victim@y.com",
    "Ada <a@x.com>",
    "a" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com",
])
async def test_intake_refuses_anything_but_one_email_address_and_writes_nothing(
    db_engine: AsyncEngine, unique_id: str, bad: str,
) -> None:
    rid = f"intake-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    with pytest.raises(InvalidBooking) as refused:
        await insert_booking(db_engine, NewBooking(
            restaurant_id=rid, party_size=2, start=slot(), guest_email=bad),
            now=datetime.now(UTC))
    assert refused.value.code == "invalid_email"
    assert "not an email address" in refused.value.message
    assert await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                        r=rid) == 0


async def test_intake_refuses_a_name_with_a_line_break_or_too_long(
    db_engine: AsyncEngine, unique_id: str,
) -> None:
    rid = f"name-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    for name in ("Ada\r\nBcc: x", "A" * 101):
        with pytest.raises(InvalidBooking) as refused:
            await insert_booking(db_engine, NewBooking(
                restaurant_id=rid, party_size=2, start=slot(), guest_name=name,
                guest_email="ada@example.com"), now=datetime.now(UTC))
        assert refused.value.code == "invalid_name"
    assert await scalar(db_engine, "SELECT count(*) FROM bookings WHERE restaurant_id = :r",
                        r=rid) == 0


# ----------------------------------------------------------- the mail step


async def test_a_permanently_refused_address_ends_the_email_step_and_the_booking_stays_confirmed(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str,
) -> None:
    guest = address("gone")
    rid = f"perm-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2, email=guest)
    queue = f"mail-{uuid.uuid4().hex[:8]}"
    client = time_skipping_env.client
    async with SmtpServer(rcpt_reply=lambda r: (550, f"5.1.1 <{r}>: no such user")) as server:
        transport = SmtpTransport("127.0.0.1", server.port, timeout=5)
        async with build_worker(client, db_engine, test_settings, task_queue=queue,
                                transport=transport):
            handle = await start_booking_workflow(
                client, booking_id=booking, restaurant_id=rid, party_size=2, start=slot(),
                task_queue=queue)
            outcome = await asyncio.wait_for(handle.result(), timeout=120)
            history = await client.get_workflow_handle(booking_workflow_id(booking)).fetch_history()
    assert outcome.state == "confirmed"
    assert server.received == [] and server.rcpt_attempts == [guest]  # tried once, never again
    row = await outbox(db_engine, booking)
    assert row["status"] == "failed" and row["delivery_failures"] == 1
    assert row["send_attempts"] == 0
    assert "rejected the message permanently" in str(row["last_error"])
    failed = await events(db_engine, booking, "email.failed")
    assert len(failed) == 1 and failed[0]["permanent"] is True
    state = await scalar(db_engine, "SELECT assignment_state FROM bookings WHERE id = "
                         "CAST(:b AS uuid)", b=booking)
    assert state == "confirmed"
    # The address is nowhere in Temporal, nor in what we recorded about the failure.
    assert guest not in json.dumps(history.to_json_dict())
    assert guest not in json.dumps(failed) and guest not in str(row["last_error"])


async def test_transient_errors_retry_and_deliver_exactly_one_message(
    time_skipping_env: WorkflowEnvironment, db_engine: AsyncEngine, test_settings: Settings,
    unique_id: str,
) -> None:
    guest = address("busy")
    rid = f"trans-{unique_id}"
    await import_plan(db_engine, floorplan(rid, [{"id": "T1", "capacity": 2}]))
    booking = await new_booking(db_engine, rid, 2, email=guest)
    replies = iter([(451, f"4.7.1 <{guest}> greylisted"), (421, f"4.3.2 {guest} try later")])
    queue = f"mail-{uuid.uuid4().hex[:8]}"
    client = time_skipping_env.client
    # The third attempt is accepted, slowly: time to look at the retried activity.
    async with SmtpServer(rcpt_reply=lambda _r: next(replies, None), data_delay=3) as server:
        transport = SmtpTransport("127.0.0.1", server.port, timeout=10)
        async with build_worker(client, db_engine, test_settings, task_queue=queue,
                                transport=transport):
            handle = await start_booking_workflow(
                client, booking_id=booking, restaurant_id=rid, party_size=2, start=slot(),
                task_queue=queue)
            while len(server.rcpt_attempts) < 3:
                await asyncio.sleep(0.01)
            pending = (await handle.describe()).raw_description.pending_activities
            outcome = await asyncio.wait_for(handle.result(), timeout=120)
            history = await client.get_workflow_handle(booking_workflow_id(booking)).fetch_history()
    assert [p.activity_type.name for p in pending] == ["send_confirmation_email"]
    last_failure = pending[0].last_failure
    assert pending[0].attempt == 3 and "MailTransient" in str(last_failure)
    assert "try later" in str(last_failure) and guest not in str(last_failure)
    assert outcome.state == "confirmed"
    assert [r.recipients for r in server.received] == [[guest]]
    assert server.rcpt_attempts == [guest] * 3
    row = await outbox(db_engine, booking)
    assert row["status"] == "sent" and row["last_error"] is None
    assert row["delivery_failures"] == 2 and row["send_attempts"] == 1  # one message, no duplicate
    assert await events(db_engine, booking, "email.failed") == []
    assert guest not in json.dumps(history.to_json_dict())


async def test_transient_errors_are_bounded_then_recorded_as_email_failed(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    guest = address("down")
    booking = await outbox_booking(db_engine, unique_id, guest)
    async with SmtpServer(rcpt_reply=lambda r: (451, f"4.4.1 <{r}> mailbox busy")) as server:
        acts = activities_for(db_engine, test_settings, server, mail_max_attempts=3,
                              breaker_threshold=10)
        env = ActivityEnvironment()
        messages = []
        for _ in range(2):
            with pytest.raises(ApplicationError) as raised:
                await env.run(acts.send_confirmation_email, EmailRequest(booking))
            assert raised.value.type == "MailTransient" and not raised.value.non_retryable
            messages.append(str(raised.value))
        result = await env.run(acts.send_confirmation_email, EmailRequest(booking))
        again = await env.run(acts.send_confirmation_email, EmailRequest(booking))
    assert isinstance(result, EmailResult) and result.failed and not result.sent
    assert "gave up after 3 attempts" in str(result.reason)
    assert again.failed and len(server.rcpt_attempts) == 3  # a failed email is final
    row = await outbox(db_engine, booking)
    assert row["status"] == "failed" and row["delivery_failures"] == 3
    failed = await events(db_engine, booking, "email.failed")
    assert len(failed) == 1 and failed[0]["permanent"] is False and failed[0]["attempts"] == 3
    assert all(guest not in m for m in [*messages, str(result.reason), json.dumps(failed)])


async def test_mail_errors_open_the_mail_breaker_never_the_database_one(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    guest = address("outage")
    booking = await outbox_booking(db_engine, unique_id, guest)
    server = await SmtpServer().start()
    port = server.port
    await server.stop()  # nothing listens there now: connection refused
    settings = test_settings.model_copy(update={"breaker_threshold": 2,
                                                "breaker_cooldown_seconds": 300})
    acts = BookingActivities(db_engine, SmtpTransport("127.0.0.1", port, timeout=2), settings)
    env = ActivityEnvironment()
    kinds = []
    for _ in range(3):
        with pytest.raises(ApplicationError) as raised:
            await env.run(acts.send_confirmation_email, EmailRequest(booking))
        kinds.append(raised.value.type)
    assert kinds == ["MailTransient", "MailTransient", "MailCircuitOpen"]
    assert acts.mail_breaker.state == "open"
    assert acts.breaker.state == "closed" and acts.breaker.failures == 0
    row = await outbox(db_engine, booking)
    assert row["status"] == "pending" and row["delivery_failures"] == 2  # the open breaker sent nothing
    opened = [e for e in await events(db_engine, None, "circuit_breaker.opened")
              if e.get("breaker") == "mail"]
    assert opened and all(guest not in json.dumps(e) for e in opened)
    assert not [e for e in await events(db_engine, None, "circuit_breaker.opened")
                if e.get("breaker") == "database" and "Connect call failed" in str(e)]


async def test_smtp_runs_off_the_event_loop_and_outside_any_transaction(
    db_engine: AsyncEngine, test_settings: Settings, unique_id: str,
) -> None:
    guest = address("slow")
    booking = await outbox_booking(db_engine, unique_id, guest)
    async with SmtpServer(data_delay=1.5) as server:
        acts = activities_for(db_engine, test_settings, server)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        send = asyncio.create_task(ActivityEnvironment().run(
            acts.send_confirmation_email, EmailRequest(booking)))
        while not server.rcpt_attempts:  # the SMTP session reached the message
            await asyncio.sleep(0.01)
        tick_task = asyncio.create_task(ticker())
        # Mid-send: the row is claimed and committed, and nobody holds its lock.
        async with db_engine.begin() as conn:
            row = (await conn.execute(text(
                "SELECT status FROM email_outbox WHERE booking_id = CAST(:b AS uuid) "
                "FOR UPDATE NOWAIT"), {"b": booking})).one()
        await asyncio.sleep(0.3)
        ticks_during_send, replied = ticks, len(server.received)
        result = await send
        tick_task.cancel()
    assert row.status == "sending"
    # The loop kept running while the server still sat on the message (the
    # server shares this loop: a blocking send could not even be answered).
    assert replied == 0 and ticks_during_send >= 3
    assert result.sent and len(server.received) == 1
    assert (await outbox(db_engine, booking))["status"] == "sent"
