"""What a guest reads: the restaurant's name, its local time with the zone
named, the party and the zone asked for; never a table code (unless the
restaurant promises tables), a booking id or a UTC stamp; an escaped HTML part
and a calendar event at the right instant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from seatflow.domain.mail import (
    Claim,
    EmailBooking,
    GuestEmail,
    _event,  # the reference calendar's event
    cancellation_email,
    confirmation_email,
    table_changed_email,
)
from seatflow.mail import build_message

BOOKING_ID = "5f0c7a1e-3b7d-4c1a-9e0f-2d6b8a4c1e77"
PARIS = ZoneInfo("Europe/Paris")


def paris(**overrides: Any) -> EmailBooking:
    """A party of 4 on Wednesday 16 December 2026 at 20:00 in Paris (19:00 UTC)."""
    start = datetime(2026, 12, 16, 20, 0, tzinfo=PARIS)
    booking = EmailBooking(
        booking_id=BOOKING_ID, restaurant_name="Chez Margot", timezone="Europe/Paris",
        party_size=4, start=start.astimezone(UTC),
        end=(start + timedelta(hours=2)).astimezone(UTC),
        stamp=datetime(2026, 12, 6, 11, 0, tzinfo=UTC), guest_name="Ada Lovelace",
        zone="Terrace")
    return replace(booking, **overrides)


def event_of(message: GuestEmail) -> tuple[icalendar.Calendar, icalendar.Event]:
    assert message.ics is not None
    calendar = icalendar.Calendar.from_ical(message.ics)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    return calendar, events[0]


def test_a_paris_confirmation_reads_the_local_time_with_its_zone_and_no_internal_codes() -> None:
    message = confirmation_email(paris())
    assert "Wednesday 16 December 2026 at 20:00 (Europe/Paris time)" in message.text
    assert "Chez Margot" in message.subject and "Chez Margot" in message.text
    assert "4 people" in message.text
    assert "Terrace" in message.text  # the zone the guest asked for
    assert message.text.startswith("Hello Ada Lovelace,")
    for internal in (BOOKING_ID, "19:00", "+00:00", "2026-12-16", "UTC", "Table"):
        assert internal not in message.text and internal not in message.subject
        assert internal not in message.html


def test_no_zone_asked_for_no_zone_named_and_a_party_of_one_is_a_person() -> None:
    message = confirmation_email(paris(zone=None, party_size=1, guest_name=None))
    assert "Terrace" not in message.text and "Seating" not in message.text
    assert "1 person" in message.text
    assert message.text.startswith("Hello,\n")


def test_the_html_part_escapes_the_guest_name_and_says_the_same() -> None:
    message = confirmation_email(paris(guest_name='<script>alert("x")</script> & Co',
                                       restaurant_name="Bar <Bleu>"))
    assert "<script>" not in message.html and "Bar <Bleu>" not in message.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in message.html
    assert "Bar &lt;Bleu&gt;" in message.html
    assert "Wednesday 16 December 2026 at 20:00 (Europe/Paris time)" in message.html


def test_the_calendar_event_is_valid_icalendar_at_the_right_instant() -> None:
    calendar, event = event_of(confirmation_email(paris()))
    assert str(calendar["METHOD"]) == "PUBLISH" and str(calendar["VERSION"]) == "2.0"
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == datetime(2026, 12, 16, 19, 0, tzinfo=UTC)  # the same instant
    assert (start.hour, str(start.tzinfo)) == (20, "Europe/Paris")  # on the restaurant's clock
    assert end - start == timedelta(hours=2)
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(event["UID"]) == f"{BOOKING_ID}@seatflow"
    assert "Chez Margot" in str(event["SUMMARY"])
    assert str(event["STATUS"]) == "CONFIRMED"


def test_summer_time_is_on_the_restaurant_clock_too() -> None:
    start = datetime(2027, 7, 14, 20, 0, tzinfo=PARIS)
    booking = paris(start=start.astimezone(UTC), end=(start + timedelta(hours=2)).astimezone(UTC))
    message = confirmation_email(booking)
    assert "Wednesday 14 July 2027 at 20:00 (Europe/Paris time)" in message.text
    _calendar, event = event_of(message)
    assert event.decoded("DTSTART") == datetime(2027, 7, 14, 18, 0, tzinfo=UTC)


def test_the_cancellation_cancels_the_same_calendar_event() -> None:
    confirmed = confirmation_email(paris())
    cancelled = cancellation_email(paris())
    assert "cancelled" in cancelled.subject and "is cancelled" in cancelled.text
    assert "Wednesday 16 December 2026 at 20:00 (Europe/Paris time)" in cancelled.text
    _c, first = event_of(confirmed)
    _c, then = event_of(cancelled)
    assert str(then["UID"]) == str(first["UID"])
    assert str(then["STATUS"]) == "CANCELLED"
    assert int(then["SEQUENCE"]) > int(first["SEQUENCE"])
    assert then.decoded("DTSTART") == first.decoded("DTSTART")


def test_tables_are_named_only_by_a_restaurant_that_promises_them() -> None:
    promised = paris(tables=("T12", "T13"), table_zone="Terrace")
    message = confirmation_email(promised)
    assert "Tables T12 + T13 (Terrace)" in message.text
    changed = table_changed_email(promised)
    assert "different table" in changed.text and "Tables T12 + T13 (Terrace)" in changed.text
    assert changed.ics is None  # the time did not change
    assert "T12" not in confirmation_email(paris()).text


def test_the_message_has_a_text_and_an_html_alternative_and_the_calendar_attached() -> None:
    message = confirmation_email(paris())
    claim = Claim(1, BOOKING_ID, "confirmation", "ada@example.com", message.subject,
                  message.text, 1, html=message.html, ics=message.ics)
    built = message_from_bytes(bytes(build_message(claim, "Chez Margot <b@example.com>")),
                               policy=policy.default)
    assert isinstance(built, EmailMessage)
    body = built.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content() == message.text
    rich = built.get_body(preferencelist=("html",))
    assert rich is not None and rich.get_content() == message.html
    [attached] = list(built.iter_attachments())
    assert attached.get_content_type() == "text/calendar"
    assert attached.get_filename() == "booking.ics"
    calendar = icalendar.Calendar.from_ical(attached.get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART").date() == date(2026, 12, 16)


def test_a_row_without_html_or_calendar_still_sends_its_text() -> None:
    claim = Claim(1, BOOKING_ID, "confirmation", "ada@example.com", "Subject", "Text\n", 1)
    built = build_message(claim, "b@example.com")
    assert not built.is_multipart() and built.get_content() == "Text\n"


def test_the_from_line_names_the_restaurant_unless_the_setting_names_someone() -> None:
    from seatflow.mail import from_line

    assert from_line("bookings@example.com", "Chez Margot") == (
        "Chez Margot <bookings@example.com>")
    assert from_line("Reservations <r@example.com>", "Chez Margot") == (
        "Reservations <r@example.com>")
    assert from_line("bookings@example.com", None) == "bookings@example.com"


# -- the cheaper composition (issue 27) writes the very bytes the stdlib would


def _whole_calendar(booking: EmailBooking, *, cancelled: bool) -> str:
    """The same event in a calendar icalendar writes in one piece, its own
    VTIMEZONE included (the reference for the cached head and zone)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//seatflow//booking//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    year = booking.start.astimezone(ZoneInfo(booking.timezone)).year
    cal.add_component(icalendar.Timezone.from_tzid(
        booking.timezone, first_date=date(year, 1, 1), last_date=date(year + 1, 12, 31)))
    cal.add_component(_event(booking, cancelled=cancelled))
    ical: bytes = cal.to_ical()
    return ical.decode("utf-8")


SHAPES_OF_BOOKINGS = [
    paris(),
    paris(restaurant_name="Café Économe, \"le vrai\"; depuis 1920", guest_name="José Ñúñez"),
    paris(timezone="America/New_York", zone=None, party_size=1),
    paris(timezone="Australia/Lord_Howe", tables=("T1", "T2"), table_zone="Bar",
          start=datetime(2027, 4, 4, 1, 30, tzinfo=UTC), end=datetime(2027, 4, 4, 3, tzinfo=UTC)),
    paris(restaurant_name="A" * 120, guest_name=None),
]


def test_the_calendar_is_the_one_icalendar_writes_whole() -> None:
    for booking in SHAPES_OF_BOOKINGS:
        assert confirmation_email(booking).ics == _whole_calendar(booking, cancelled=False)
        assert cancellation_email(booking).ics == _whole_calendar(booking, cancelled=True)


def test_the_message_bytes_are_the_stock_email_package_bytes(monkeypatch: Any) -> None:
    """Shared MIME headers, folds kept and the boundary check: byte for byte
    what `email.policy.default` and `bytes(message)` write (the same random
    boundaries drawn)."""
    import random

    from seatflow import mail

    for booking in SHAPES_OF_BOOKINGS:
        for make in (confirmation_email, table_changed_email, cancellation_email):
            message = make(booking)
            claim = Claim(1, booking.booking_id, "confirmation", "ada@example.com",
                          message.subject, message.text, 1, html=message.html,
                          ics=message.ics, sender_name=booking.restaurant_name)
            random.seed(7)
            ours = mail.message_bytes(build_message(claim, "bookings@example.com"))
            with monkeypatch.context() as patched:
                patched.setattr(mail, "MESSAGE_POLICY", policy.default)
                random.seed(7)
                stock = bytes(build_message(claim, "bookings@example.com"))
            assert ours == stock
    # The shared headers keep one fold per policy setting, not one per message.
    shared = mail.MESSAGE_POLICY.header_factory._shared  # type: ignore[attr-defined]
    assert shared and all(len(h.__dict__.get("_folded", {})) <= 2 for h in shared.values())


def test_a_boundary_found_in_the_text_is_made_again_as_the_stdlib_does() -> None:
    import random
    from email.generator import BytesGenerator

    from seatflow.mail import _Generator

    random.seed(3)
    drawn = BytesGenerator._make_boundary()  # type: ignore[attr-defined]
    for text in (f"x\n--{drawn}\ny".encode(), f"--{drawn}--\n--{drawn}.0\n".encode(),
                 f"inline --{drawn} only".encode(), b"nothing"):
        random.seed(3)
        stock = BytesGenerator._make_boundary(text)  # type: ignore[attr-defined]
        random.seed(3)
        assert _Generator._make_boundary(text) == stock
    random.seed(3)
    assert _Generator._make_boundary(f"--{drawn}--\n--{drawn}.0\n".encode()) == f"{drawn}.1"


async def test_breaker_events_a_failed_mark_could_not_write_are_kept_for_the_next() -> None:
    """The mail breaker's opened/closed events go out in the transaction that
    marks the message; when that mark fails (the database is down), they
    stay with the breaker for its next mark instead of being lost."""
    import pytest

    from seatflow.breaker import CircuitBreaker
    from seatflow.domain.mail import Claim
    from seatflow.mail import finish_claim
    from seatflow.storage.db import make_engine

    breaker = CircuitBreaker(name="mail", threshold=1, cooldown=60)
    breaker.record_failure("smtp down")
    opened = list(breaker.pending_events)
    assert opened
    unreachable = make_engine("postgresql://seatflow@127.0.0.1:9/none")  # nothing listens
    claim = Claim(outbox_id=1, booking_id="b", kind="confirmation", recipient="a@example.com",
                  subject="s", body="b", attempts=1)
    try:
        with pytest.raises(OSError):
            await finish_claim(unreachable, claim, path="/tmp/x.eml", breaker=breaker)
    finally:
        await unreachable.dispose()
    assert breaker.pending_events == opened
