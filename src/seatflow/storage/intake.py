"""Intake: a new booking and its intake-outbox row, written in one transaction
(`insert_booking_once`, idempotent on the request's key), and the outbox of
bookings whose workflow has not been started yet (`pending_intake`;
`mark_intake_started` closes a row).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from seatflow.domain.guest import check_guest_email, check_guest_name
from seatflow.domain.intake import (
    IdempotencyConflict,
    NewBooking,
    check_keys,
    request_fingerprint,
)
from seatflow.domain.restaurant import InvalidBooking, booking_window
from seatflow.domain.states import AssignmentState
from seatflow.domain.workflow_ids import booking_workflow_id
from seatflow.storage.holds import claim_hold
from seatflow.storage.restaurants import load_policy
from seatflow.storage.transitions import BookingNotFound


@dataclass(frozen=True)
class PendingIntake:
    booking_id: str
    restaurant_id: str
    party_size: int
    start: datetime


async def pending_intake(
    engine: AsyncEngine,
    *,
    limit: int = 100,
    min_age_seconds: float = 0.0,
    restaurant_ids: Collection[str] | None = None,
) -> list[PendingIntake]:
    """Bookings whose workflow has not been started, oldest first, at least
    `min_age_seconds` old; only those of `restaurant_ids` when given."""
    scope = "AND b.restaurant_id = ANY(:restaurants) " if restaurant_ids else ""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.booking_id::text AS booking_id, b.restaurant_id, b.party_size, "
                "b.start_at FROM intake_outbox o JOIN bookings b ON b.id = o.booking_id "
                "WHERE o.started_at IS NULL "
                "AND o.created_at <= clock_timestamp() - make_interval(secs => :age) "
                f"{scope}ORDER BY o.created_at LIMIT :limit"
            ),
            {"age": min_age_seconds, "limit": limit,
             **({"restaurants": list(restaurant_ids)} if restaurant_ids else {})},
        )
        return [PendingIntake(r.booking_id, r.restaurant_id, r.party_size, r.start_at)
                for r in rows]


async def intake_details(engine: AsyncEngine, booking_id: str) -> PendingIntake:
    """What the booking's workflow is started with, as stored (the start in
    UTC). Raises BookingNotFound."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            text("SELECT restaurant_id, party_size, start_at FROM bookings "
                 "WHERE id = CAST(:id AS uuid)"), {"id": booking_id},
        )).one_or_none()
    if row is None:
        raise BookingNotFound(booking_id)
    return PendingIntake(booking_id, row.restaurant_id, row.party_size, row.start_at)


async def _existing(conn: AsyncConnection, new: NewBooking, fingerprint: str) -> str | None:
    """The booking a previous call created for the same key (or booking id);
    raises IdempotencyConflict when that call asked for something else."""
    rows: Sequence[Any] = []
    if new.idempotency_key is not None:
        rows = (
            await conn.execute(
                text("SELECT id::text AS id, request_fingerprint FROM bookings "
                     "WHERE restaurant_id = :r AND idempotency_key = :k"),
                {"r": new.restaurant_id, "k": new.idempotency_key},
            )
        ).all()
    if not rows and new.booking_id is not None:
        rows = (
            await conn.execute(
                text("SELECT id::text AS id, request_fingerprint FROM bookings "
                     "WHERE id = CAST(:id AS uuid)"),
                {"id": new.booking_id},
            )
        ).all()
    if not rows:
        return None
    found = rows[0]
    if found.request_fingerprint != fingerprint:
        what = (f"idempotency key {new.idempotency_key!r}" if new.idempotency_key is not None
                else f"booking id {new.booking_id}")
        raise IdempotencyConflict(
            f"{what} was already used for a different booking request ({found.id}); "
            "use a new key for a new booking", found.id,
        )
    return str(found.id)


async def find_existing_booking(engine: AsyncEngine, new: NewBooking) -> str | None:
    """The booking already created for `new`'s idempotency key or booking id,
    None when there is none (or `new` has neither). Raises IdempotencyConflict."""
    check_keys(new)
    if new.idempotency_key is None and new.booking_id is None:
        return None
    new = _cleaned(new)
    async with engine.connect() as conn:
        return await _existing(conn, new, request_fingerprint(new))


def _cleaned(new: NewBooking) -> NewBooking:
    """The request as it is stored (the guest's name and address checked and
    trimmed): lookup and insert fingerprint the same values, so a retry that
    differs only in whitespace finds its booking."""
    return replace(new, guest_email=check_guest_email(new.guest_email),
                   guest_name=check_guest_name(new.guest_name))


async def insert_booking_once(
    engine: AsyncEngine, new: NewBooking, *, now: datetime
) -> tuple[str, bool]:
    """Validate against the restaurant and insert the booking plus its intake
    row; the booking id, and whether this call created it (False: a retry got
    the booking an earlier call with the same key, or booking id, made).

    Raises InvalidBooking (nothing written) when the booking can never be
    seated as asked: unknown restaurant, bad party, past, outside service, or
    a guest email that is not exactly one address (or a bad name).

    Concurrent retries are safe: the unique (restaurant, key) constraint lets
    one insert win; the others wait for it and return its booking. A key used
    for a different request raises IdempotencyConflict; nothing is written.
    """
    check_keys(new)
    new = _cleaned(new)
    fingerprint = request_fingerprint(new)
    booking_id = new.booking_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        if new.idempotency_key is not None or new.booking_id is not None:
            existing = await _existing(conn, new, fingerprint)
            if existing is not None:
                return existing, False
        policy = await load_policy(conn, new.restaurant_id)
        if policy is None:
            raise InvalidBooking("unknown_restaurant", f"unknown restaurant {new.restaurant_id!r}")
        window = booking_window(policy, new.party_size, new.start, now=now)
        if new.zone_preference is not None:
            zone = (
                await conn.execute(
                    text("SELECT 1 FROM zones WHERE restaurant_id = :r AND id = :z"),
                    {"r": new.restaurant_id, "z": new.zone_preference},
                )
            ).first()
            if zone is None:
                raise InvalidBooking(
                    "unknown_zone",
                    f"restaurant {new.restaurant_id} has no zone {new.zone_preference!r}",
                )
        inserted = (
            await conn.execute(
                text(
                    "INSERT INTO bookings (id, restaurant_id, party_size, start_at, end_at, "
                    "occupied_until, zone_preference, guest_name, guest_email, idempotency_key, "
                    "request_fingerprint) VALUES "
                    "(CAST(:id AS uuid), :r, :p, :s, :e, :o, :z, :n, :m, :k, :f) "
                    # A concurrent call with the same key or id won: use its booking.
                    "ON CONFLICT DO NOTHING RETURNING id"
                ),
                {"id": booking_id, "r": new.restaurant_id, "p": new.party_size, "s": window.start,
                 "e": window.end, "o": window.occupied_until, "z": new.zone_preference,
                 "n": new.guest_name, "m": new.guest_email, "k": new.idempotency_key,
                 "f": fingerprint},
            )
        ).first()
        if inserted is None:
            existing = await _existing(conn, new, fingerprint)
            if existing is None:  # the conflicting row is another booking's id
                raise IdempotencyConflict(
                    f"booking id {booking_id} is already taken", booking_id
                )
            return existing, False
        if new.hold_id is not None:  # refused: the transaction rolls back, nothing written
            await claim_hold(conn, hold_id=new.hold_id, holder=new.holder,
                             restaurant_id=new.restaurant_id, booking_id=booking_id,
                             party_size=new.party_size, start=window.start)
        await conn.execute(
            text(
                "INSERT INTO booking_assignment_state_history "
                "(booking_id, from_state, to_state, version, reason) "
                "VALUES (CAST(:id AS uuid), NULL, :created, 0, 'booking received')"
            ),
            {"id": booking_id, "created": AssignmentState.CREATED.value},
        )
        await conn.execute(
            text(
                "INSERT INTO intake_outbox (booking_id, workflow_id) "
                "VALUES (CAST(:id AS uuid), :wf)"
            ),
            {"id": booking_id, "wf": booking_workflow_id(booking_id)},
        )
    return booking_id, True


async def mark_intake_started(engine: AsyncEngine, booking_id: str, error: str | None = None) -> None:
    async with engine.begin() as conn:
        if error is None:
            await conn.execute(
                text("UPDATE intake_outbox SET started_at = clock_timestamp(), last_error = NULL "
                     "WHERE booking_id = CAST(:id AS uuid) AND started_at IS NULL"),
                {"id": booking_id},
            )
        else:
            await conn.execute(
                text("UPDATE intake_outbox SET last_error = :e WHERE booking_id = CAST(:id AS uuid)"),
                {"id": booking_id, "e": error[:500]},
            )
