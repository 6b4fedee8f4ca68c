"""What a guest's email says, and the email outbox's claim protocol (pure).

A guest message reads like the restaurant wrote it: the restaurant's name,
the date and time on the restaurant's clock with its zone named, the party,
and the zone when the guest asked for one. It never names a table, unless the
restaurant promises tables (a floor-plan setting), and never shows a booking
id or a UTC stamp. Every message has a plain-text and an HTML part (every
value escaped); a confirmation carries an iCalendar event, a cancellation the
same event cancelled (same UID, higher SEQUENCE), so a calendar that took the
first one updates it.

The email activity bounds itself: after `Settings.mail_max_attempts` real
delivery attempts that failed transiently it records `email.failed` and
returns, so the workflow's retry policy may stay unlimited (a database outage
while recording must still be retried).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar

# A claim older than this is taken to be from a dead attempt and sent again.
EMAIL_CLAIM_LEASE = timedelta(seconds=90)

ICS_FILENAME = "booking.ics"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class Claim:
    """An outbox email claimed for sending (its row is `sending`). `html` and
    `ics` are the message's other parts, as written at enqueue time (None for
    a row written before they existed)."""

    outbox_id: int
    booking_id: str
    kind: str
    recipient: str | None
    subject: str
    body: str
    attempts: int  # delivery attempts, this one included (failed ones before it + 1)
    html: str | None = None
    ics: str | None = None
    token: str = ""  # the claim's token: marking the row names it (storage.outbox)
    # The restaurant's name: the From line's display name, so the guest sees
    # who wrote to them (the address stays SEATFLOW_MAIL_FROM's).
    sender_name: str | None = None


@dataclass(frozen=True)
class NothingToSend:
    """Why a claim found nothing to send: no row (or a confirmation whose
    booking is no longer confirmed), already sent (`duplicate`, counted as a
    suppressed duplicate), or already given up (`failed`, with its reason)."""

    duplicate: bool = False
    failed: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class EmailBooking:
    """What a guest's email says about their booking (never more: the message
    is stored in the outbox and the guest's address travels apart from it).

    `start` and `end` are aware instants (the guest's sitting, without the
    table's buffer); `timezone` is the restaurant's IANA zone; `zone` is the
    name of the zone the guest asked for (None: no preference); `tables` and
    `table_zone` are filled only for a restaurant that promises tables;
    `stamp` is when the message is written (the calendar's DTSTAMP)."""

    booking_id: str
    restaurant_name: str
    timezone: str
    party_size: int
    start: datetime
    end: datetime
    stamp: datetime
    guest_name: str | None = None
    zone: str | None = None
    tables: tuple[str, ...] = ()
    table_zone: str | None = None


@dataclass(frozen=True)
class GuestEmail:
    """One guest message: subject, plain text, HTML, and an iCalendar
    attachment (text/calendar, None when the message has none)."""

    subject: str
    text: str
    html: str
    ics: str | None = None


# ------------------------------------------------------------- wording


def local_start(booking: EmailBooking) -> datetime:
    return booking.start.astimezone(ZoneInfo(booking.timezone))


def human_date(moment: datetime) -> str:
    """"Wednesday 16 December 2026" (English, whatever the process locale)."""
    return f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def when(booking: EmailBooking) -> str:
    """"Wednesday 16 December 2026 at 20:00 (Europe/Paris time)"."""
    local = local_start(booking)
    return f"{human_date(local)} at {local:%H:%M} ({booking.timezone} time)"


def _party(size: int) -> str:
    return "1 person" if size == 1 else f"{size} people"


def _greeting(booking: EmailBooking) -> str:
    return f"Hello {booking.guest_name}," if booking.guest_name else "Hello,"


def _table(booking: EmailBooking) -> str | None:
    """The promised table(s), for a restaurant that promises tables."""
    if not booking.tables:
        return None
    label = "Table" if len(booking.tables) == 1 else "Tables"
    where = f" ({booking.table_zone})" if booking.table_zone else ""
    return f"{label} {' + '.join(booking.tables)}{where}"


def _details(booking: EmailBooking) -> list[tuple[str, str]]:
    rows = [("When", when(booking)), ("Party", _party(booking.party_size))]
    table = _table(booking)
    if table is not None:
        rows.append(("Table", table))
    elif booking.zone:
        rows.append(("Seating", f"{booking.zone}, as you asked"))
    return rows


def _compose(booking: EmailBooking, subject: str, lead: str, tail: str,
             ics: str | None) -> GuestEmail:
    """The plain-text and the HTML part from the same words; every value in
    the HTML is escaped (a guest's name is theirs to choose)."""
    details = _details(booking)
    width = max(len(label) for label, _ in details) + 1
    text = "\n".join([
        _greeting(booking), "", lead, "",
        *(f"  {label + ':':<{width}} {value}" for label, value in details), "",
        tail, "", booking.restaurant_name, "",
    ])
    e = html.escape
    rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in details)
    body = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{e(subject)}</title></head><body>\n"
        f"<p>{e(_greeting(booking))}</p>\n<p>{e(lead)}</p>\n"
        f"<table cellpadding=\"4\">{rows}</table>\n<p>{e(tail)}</p>\n"
        f"<p>{e(booking.restaurant_name)}</p>\n</body></html>\n"
    )
    return GuestEmail(subject=subject, text=text, html=body, ics=ics)


_CALENDAR_END = "END:VCALENDAR\r\n"


@lru_cache(maxsize=64)
def _vtimezone(tzid: str, year: int) -> str:
    """The restaurant's VTIMEZONE for the booking's year and the next, as
    iCalendar text: the same for every booking of that year, so made and
    serialised once (issue 27: made once, a quarter of a message's calendar;
    serialised once, half of what was left)."""
    zone = icalendar.Timezone.from_tzid(tzid, first_date=date(year, 1, 1),
                                        last_date=date(year + 1, 12, 31))
    ical: bytes = zone.to_ical()
    return ical.decode("utf-8")


@lru_cache(maxsize=1)
def _calendar_head() -> str:
    """The VCALENDAR's opening and properties, the same for every message."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//seatflow//booking//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    ical: bytes = cal.to_ical()
    return ical.decode("utf-8").removesuffix(_CALENDAR_END)


def _calendar(booking: EmailBooking, *, cancelled: bool) -> str:
    """The booking as one VEVENT (METHOD:PUBLISH) at the restaurant's local
    time (TZID, with its VTIMEZONE for the booking's year and the next). The
    UID is derived from the booking id, so a later message about the same
    booking updates the same event: the cancellation is that event again with
    STATUS:CANCELLED and SEQUENCE 1. iCalendar text is one content line after
    another, a component's lines the same wherever it sits: the calendar is
    its cached head, the cached VTIMEZONE, this event, and its end."""
    tz = ZoneInfo(booking.timezone)
    ical: bytes = _event(booking, cancelled=cancelled).to_ical()
    return (_calendar_head() + _vtimezone(booking.timezone, booking.start.astimezone(tz).year)
            + ical.decode("utf-8") + _CALENDAR_END)


def _event(booking: EmailBooking, *, cancelled: bool) -> icalendar.Event:
    """The booking's VEVENT, at the restaurant's local time."""
    tz = ZoneInfo(booking.timezone)
    event = icalendar.Event()
    event.add("uid", f"{booking.booking_id}@seatflow")
    event.add("dtstamp", booking.stamp)
    event.add("dtstart", booking.start.astimezone(tz))
    event.add("dtend", booking.end.astimezone(tz))
    event.add("summary", f"{booking.restaurant_name}, table for {booking.party_size}")
    event.add("location", booking.restaurant_name)
    event.add("description", "\n".join(f"{label}: {value}"
                                       for label, value in _details(booking)))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", 1 if cancelled else 0)
    event.add("transp", "OPAQUE")
    return event


# ------------------------------------------------------------- the messages


def confirmation_email(booking: EmailBooking) -> GuestEmail:
    """The booking's confirmation, with its calendar event."""
    name = booking.restaurant_name
    return _compose(
        booking,
        subject=f"Your table at {name} on {human_date(local_start(booking))} is confirmed",
        lead=f"Your table at {name} is confirmed.",
        tail="The attached calendar event adds it to your calendar. See you soon!",
        ics=_calendar(booking, cancelled=False),
    )


def table_changed_email(booking: EmailBooking) -> GuestEmail:
    """Sent only by a restaurant that promises tables, when the promised table
    or its zone changed; the time is unchanged, so no calendar event."""
    name = booking.restaurant_name
    return _compose(
        booking,
        subject=f"Your table at {name} has changed",
        lead=f"Your booking at {name} is still confirmed, at a different table.",
        tail="Nothing else has changed. See you soon!",
        ics=None,
    )


def cancellation_email(booking: EmailBooking) -> GuestEmail:
    """The booking's cancellation (by the guest, an operator or the restaurant),
    with the calendar event marked cancelled."""
    name = booking.restaurant_name
    return _compose(
        booking,
        subject=f"Your booking at {name} on {human_date(local_start(booking))} is cancelled",
        lead=f"Your booking at {name} is cancelled.",
        tail="We hope to welcome you another time.",
        ics=_calendar(booking, cancelled=True),
    )
