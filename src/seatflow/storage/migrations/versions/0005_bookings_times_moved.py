"""How many times re-packing moved a booking (`bookings.times_moved`): the
engine never moves a guest twice in an evening, so the snapshot carries it.

Revision ID: 0005_bookings_times_moved
Revises: 0004_drop_permit_leases
"""

from __future__ import annotations

from alembic import op

revision = "0005_bookings_times_moved"
down_revision = "0004_drop_permit_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE bookings ADD COLUMN times_moved integer NOT NULL DEFAULT 0")
    # Bookings moved before the column existed: their history says so.
    op.execute(
        "UPDATE bookings b SET times_moved = m.n FROM (SELECT booking_id, count(*) AS n "
        "FROM booking_assignment_state_history WHERE reason LIKE 'repacked_for:%' "
        "GROUP BY booking_id) m WHERE m.booking_id = b.id"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP COLUMN times_moved")
