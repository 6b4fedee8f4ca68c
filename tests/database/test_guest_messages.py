"""The confirmation a guest receives, end to end on real PostgreSQL: the
confirm transaction writes the text, HTML and calendar parts from the booking,
its restaurant and the zone asked for; the send composes the row; the file
mailbox holds what the guest reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy.ext.asyncio import AsyncEngine

from seatflow.domain.mail import human_date
from seatflow.domain.planning import Plan
from seatflow.domain.states import AssignmentState
from seatflow.mail import FileMailbox, send_outbox_email
from seatflow.storage.attempts import AttemptSpec, SearchOutcome, run_attempt
from seatflow.storage.lifecycle import verify_booking
from tests.support import floorplan, import_plan, new_booking

PARIS = ZoneInfo("Europe/Paris")


async def confirmed_in_paris(engine: AsyncEngine, unique_id: str, tmp_path: Path, *,
                             promises_tables: bool = False) -> tuple[str, datetime, EmailMessage]:
    """A party of 4 at 20:00 Paris time ten days from now, who asked for the
    terrace, confirmed on T7 and emailed: the booking, its start, the message."""
    rid = f"paris-{unique_id}"
    plan = floorplan(rid, [{"id": "T7", "capacity": 4, "zone": "terrace"}])
    plan["restaurant"].update(name="Chez Margot", timezone="Europe/Paris")
    await import_plan(engine, {**plan, "promises_tables": promises_tables})
    day = datetime.now(PARIS).date() + timedelta(days=10)
    start = datetime(day.year, day.month, day.day, 20, 0, tzinfo=PARIS)
    booking = await new_booking(engine, rid, 4, start=start.astimezone(UTC), zone="terrace",
                                email="ada@guests.example.com")
    ctx = await verify_booking(engine, booking, now=datetime.now(UTC))
    spec = AttemptSpec(booking_id=booking, restaurant_id=rid, expected_version=ctx.version,
                       attempt_no=1, on_failure=AssignmentState.ASSIGNMENT_PENDING,
                       max_parallel=2, slot_wait_seconds=2.0)
    plans = (Plan(tables=("T7",), score=0.0, strategy="optimal_fit"),)
    rec = await run_attempt(engine, spec, lambda _s, _r: SearchOutcome(plans, ()))
    assert rec.outcome == "confirmed"
    sent = await send_outbox_email(engine, FileMailbox(tmp_path), booking, "confirmation",
                                   "bookings@example.com")
    assert sent.sent
    raw = (tmp_path / f"{booking}-confirmation.eml").read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return booking, start, message


async def test_a_paris_booking_at_8pm_is_confirmed_at_8pm_paris_time_with_a_calendar_event(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    booking, start, message = await confirmed_in_paris(db_engine, unique_id, tmp_path)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    assert f"{human_date(start)} at 20:00 (Europe/Paris time)" in text
    assert "Chez Margot" in text and "Chez Margot" in str(message["Subject"])
    # Written by the restaurant: its name before the configured address.
    assert str(message["From"]) == "Chez Margot <bookings@example.com>"
    assert "4 people" in text and "Terrace" in text
    for internal in (booking, "T7", "19:00", "18:00", "+00:00", start.date().isoformat()):
        assert internal not in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "20:00 (Europe/Paris time)" in html.get_content()
    [attached] = list(message.iter_attachments())
    assert attached.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attached.get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == start  # the same instant, on the restaurant's clock
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert str(event["UID"]) == f"{booking}@seatflow"
    assert "Chez Margot" in str(event["SUMMARY"])


async def test_a_restaurant_that_promises_tables_names_the_table_and_its_zone(
    db_engine: AsyncEngine, unique_id: str, tmp_path: Path,
) -> None:
    _booking, _start, message = await confirmed_in_paris(db_engine, unique_id, tmp_path,
                                                         promises_tables=True)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None and "Table T7 (Terrace)" in part.get_content()
