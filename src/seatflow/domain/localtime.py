"""Times as people read them: on the restaurant's clock, with its zone named.

Programs read ISO 8601 instants (the JSON keeps them); operators read these.
A restaurant's zone is its IANA name (`Europe/Paris`); without one, UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def on_clock(moment: datetime, timezone: str | None) -> datetime:
    """The instant on the restaurant's clock (UTC when the zone is unknown)."""
    return moment.astimezone(ZoneInfo(timezone) if timezone else UTC)


def zone_name(timezone: str | None) -> str:
    return timezone or "UTC"


def local_time(moment: datetime | str, timezone: str | None, fmt: str = "%Y-%m-%d %H:%M",
               *, named: bool = True) -> str:
    """`2026-12-16 20:00 Europe/Paris`: the instant (a datetime or ISO text) on
    the restaurant's clock, in `fmt`, followed by the zone unless `named` is
    False (a line that names the zone once already)."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    text = on_clock(value, timezone).strftime(fmt)
    return f"{text} {zone_name(timezone)}" if named else text
