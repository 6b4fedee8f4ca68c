"""The floor-plan tables as SQLAlchemy 2.0 typed models, for the ORM reads and
writes of `storage.floorplans` (importing and exporting a floor plan).

The migrations in `migrations/versions/` are the source of truth for the DDL
of every table; the other tables (bookings, allocations, holds, history,
attempts, events, the outboxes) are reached by SQL text in their storage
module and have no model here.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    Text,
    Time,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
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
