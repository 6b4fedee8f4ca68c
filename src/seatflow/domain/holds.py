"""A hold (slot lock): the tables of one plan held for a party over a window
for a few minutes, while a host application's guest fills in the form.
Storage grants and reads them (`seatflow.storage.holds`), the service hands
them to the API, the CLI and the host's timeline (`seatflow.service.holds`,
`seatflow.service.timeline`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Hold:
    hold_id: str
    restaurant_id: str
    holder: str  # the API token's name (the CLI's --holder)
    party_size: int
    start: datetime
    until: datetime  # end of the occupied interval (the turn plus the buffer)
    tables: tuple[str, ...]
    expires_at: datetime
    booking_id: str | None = None  # the booking made on it, once booked on

    @property
    def label(self) -> str:
        """How the host's timeline names it."""
        return f"held for a party of {self.party_size}"
