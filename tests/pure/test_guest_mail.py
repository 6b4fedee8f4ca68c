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
