"""A booking request as a host application makes it, and the pure checks on
it before anything is stored: the idempotency key, the booking id, and the
fingerprint that tells a retry of the same request from a different one."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from seatflow.domain.restaurant import InvalidBooking


@dataclass(frozen=True)
class NewBooking:
    restaurant_id: str
    party_size: int
    start: datetime
    zone_preference: str | None = None
    guest_name: str | None = None
    guest_email: str | None = None
    booking_id: str | None = None
    # A caller-supplied key, unique per restaurant: a retry with the same key
    # returns the booking already created instead of creating a second one.
    idempotency_key: str | None = None
    # Book on this hold (storage.holds) of `holder` (the API token's name):
    # the booking takes the held tables in its first attempt.
    hold_id: str | None = None
    holder: str | None = None


MAX_IDEMPOTENCY_KEY = 255


class IdempotencyConflict(InvalidBooking):
    """The key (or booking id) was already used for a different request."""

    def __init__(self, message: str, booking_id: str):
        super().__init__("idempotency_conflict", message)
        self.booking_id = booking_id


def request_fingerprint(new: NewBooking) -> str:
    """A hash of what was asked (not of who asked or when): a retry of the same
    request has the same fingerprint."""
    start = new.start
    when = start.astimezone(UTC).isoformat() if start.tzinfo else "local:" + start.isoformat()
    canonical = json.dumps(
        [new.restaurant_id, new.party_size, when, new.zone_preference, new.guest_name,
         new.guest_email],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_keys(new: NewBooking) -> None:
    """Refuse (InvalidBooking) a malformed idempotency key or a booking id that
    is not a UUID, before anything is read or written."""
    key = new.idempotency_key
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise InvalidBooking(
            "bad_idempotency_key",
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    if new.booking_id is not None:
        try:
            uuid.UUID(new.booking_id)
        except ValueError:
            raise InvalidBooking(
                "bad_booking_id", f"booking id {new.booking_id!r} is not a UUID"
            ) from None
