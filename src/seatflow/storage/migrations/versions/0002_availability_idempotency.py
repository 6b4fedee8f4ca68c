"""Availability slot step per restaurant; idempotent intake.

- `restaurants.slot_minutes`: the step between start times offered by
  availability (default 15 minutes).
- `bookings.idempotency_key`: a caller-supplied key, unique per restaurant, so
  a retried `create_booking` returns the booking it already created;
  `bookings.request_fingerprint` is a hash of what was asked, so the same key
  with a different request is refused instead of silently answered.

Revision ID: 0002_availability_idempotency
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision = "0002_availability_idempotency"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE restaurants ADD COLUMN slot_minutes integer NOT NULL DEFAULT 15 "
        "CHECK (slot_minutes BETWEEN 5 AND 240)"
    )
    op.execute(
        "ALTER TABLE bookings ADD COLUMN idempotency_key text "
        "CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255)"
    )
    op.execute("ALTER TABLE bookings ADD COLUMN request_fingerprint text")
    # NULL keys are distinct, so bookings without a key never collide.
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_restaurant_idempotency_key "
        "UNIQUE (restaurant_id, idempotency_key)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_restaurant_idempotency_key")
    op.execute("ALTER TABLE bookings DROP COLUMN IF EXISTS request_fingerprint")
    op.execute("ALTER TABLE bookings DROP COLUMN IF EXISTS idempotency_key")
    op.execute("ALTER TABLE restaurants DROP COLUMN IF EXISTS slot_minutes")
