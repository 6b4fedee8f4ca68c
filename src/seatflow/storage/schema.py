"""The database schema as SQLAlchemy 2.0 typed models.

The migration in `migrations/versions/` is the source of truth for DDL; these
models mirror it for queries. The exclusion constraint on `allocations` is the
guarantee against double booking: it is enforced by PostgreSQL whatever the
application does.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSTZRANGE, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB, list[Any]: JSONB}


class Restaurant(Base):
    __tablename__ = "restaurants"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=5)
    total_capacity: Mapped[int] = mapped_column(Integer, default=0)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # The floor plan's `promises_tables`: guests are told their table (and a
    # re-pack that changes it); false, they never hear of tables.
    promises_tables: Mapped[bool] = mapped_column(Boolean, default=False)
    # The floor plan's `equivalent_zones`: groups of zone ids re-packing treats
    # as one zone.
    zone_groups: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Service(Base):
    __tablename__ = "restaurant_services"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    restaurant_id: Mapped[str] = mapped_column(ForeignKey("restaurants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class TurnTime(Base):
    __tablename__ = "service_turn_times"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("restaurant_services.id", ondelete="CASCADE")
    )
    max_party: Mapped[int | None] = mapped_column(Integer, nullable=True)
    minutes: Mapped[int] = mapped_column(Integer)


class Zone(Base):
    __tablename__ = "zones"
    restaurant_id: Mapped[str] = mapped_column(
        ForeignKey("restaurants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DiningTable(Base):
    """A table. `id` is a surrogate integer key (the exclusion constraint ranges
    over it); `code` is the floor-plan name operators use, e.g. T12."""

    __tablename__ = "dining_tables"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    restaurant_id: Mapped[str] = mapped_column(ForeignKey("restaurants.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
    capacity: Mapped[int] = mapped_column(Integer)
    min_party: Mapped[int] = mapped_column(Integer, default=1)
    max_party: Mapped[int | None] = mapped_column(Integer, nullable=True)
    zone_id: Mapped[str] = mapped_column(Text)
    mobility: Mapped[str] = mapped_column(Text, default="movable")
    category: Mapped[str] = mapped_column(Text, default="dining")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(Text, default="available")


class TableAdjacency(Base):
    __tablename__ = "table_adjacency"
    restaurant_id: Mapped[str] = mapped_column(ForeignKey("restaurants.id", ondelete="CASCADE"))
    table_a: Mapped[int] = mapped_column(
        ForeignKey("dining_tables.id", ondelete="CASCADE"), primary_key=True
    )
    table_b: Mapped[int] = mapped_column(
        ForeignKey("dining_tables.id", ondelete="CASCADE"), primary_key=True
    )


class Booking(Base):
    __tablename__ = "bookings"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    restaurant_id: Mapped[str] = mapped_column(ForeignKey("restaurants.id"))
    party_size: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occupied_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    zone_preference: Mapped[str | None] = mapped_column(Text, nullable=True)
    guest_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    guest_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(Text, default="pending")
    assignment_state: Mapped[str] = mapped_column(Text, default="created")
    assignment_state_version: Mapped[int] = mapped_column(Integer, default=0)
    assignment_strategy: Mapped[str | None] = mapped_column(Text, nullable=True)
    times_moved: Mapped[int] = mapped_column(Integer, default=0)  # by re-packing
    assignment_pipeline: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(Text, nullable=True)


class AllocationRow(Base):
    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    restaurant_id: Mapped[str] = mapped_column(Text)
    table_id: Mapped[int] = mapped_column(ForeignKey("dining_tables.id"))
    occupied: Mapped[Any] = mapped_column(TSTZRANGE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HoldRow(Base):
    """A hold (slot lock, storage/holds.py): live until `expires_at`, or while
    the booking that claimed it awaits its tables."""

    __tablename__ = "holds"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    restaurant_id: Mapped[str] = mapped_column(ForeignKey("restaurants.id", ondelete="CASCADE"))
    holder: Mapped[str] = mapped_column(Text)
    party_size: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occupied: Mapped[Any] = mapped_column(TSTZRANGE)
    table_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    booking_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"), nullable=True)


class StateHistory(Base):
    __tablename__ = "booking_assignment_state_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    from_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    to_state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AttemptRow(Base):
    __tablename__ = "booking_assignment_attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    pipeline: Mapped[str] = mapped_column(Text, default="v3")
    strategy: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    plans_tried: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    permit_wait_ms: Mapped[float | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ObservabilityEvent(Base):
    __tablename__ = "observability_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    restaurant_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StateOutbox(Base):
    __tablename__ = "state_event_outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    topic: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EmailOutbox(Base):
    __tablename__ = "email_outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # the plain-text part
    html: Mapped[str | None] = mapped_column(Text, nullable=True)  # the HTML part
    ics: Mapped[str | None] = mapped_column(Text, nullable=True)  # text/calendar attachment
    status: Mapped[str] = mapped_column(Text, default="pending")  # see storage.outbox
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    duplicates_suppressed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # redacted
    delivery_failures: Mapped[int] = mapped_column(Integer, default=0)
    # the claim in flight (storage.outbox): a mark names it; kept while a re-armed row waits
    claim_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    claim_token_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PermitInterval(Base):
    """Every restaurant slot holding, for audits: slots never exceed MAX_PARALLEL."""

    __tablename__ = "permit_intervals"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    restaurant_id: Mapped[str] = mapped_column(Text)
    booking_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    slot: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    wait_ms: Mapped[float] = mapped_column(default=0.0)


class IntakeOutbox(Base):
    """Bookings whose workflow still has to be started (Temporal may be down)."""

    __tablename__ = "intake_outbox"
    booking_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True
    )
    workflow_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class CircuitBreakerRow(Base):
    __tablename__ = "circuit_breakers"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[str] = mapped_column(Text, default="closed")  # closed | open | half_open
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    open_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
