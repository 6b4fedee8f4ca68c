"""Guest messages in the restaurant's words: the outbox keeps each message's
HTML part and iCalendar attachment beside its plain text (written at enqueue
time, so the send is a pure composition of the row), and a restaurant says
whether it promises tables to its guests (`promises_tables`, from the floor
plan; false: guests are never told a table, and re-packing tells them nothing).

Revision ID: 0006_guest_messages
Revises: 0005_bookings_times_moved
"""

from __future__ import annotations

from alembic import op

revision = "0006_guest_messages"
down_revision = "0005_bookings_times_moved"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE email_outbox ADD COLUMN html text, ADD COLUMN ics text")
    op.execute(
        "ALTER TABLE restaurants ADD COLUMN promises_tables boolean NOT NULL DEFAULT false"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE restaurants DROP COLUMN promises_tables")
    op.execute("ALTER TABLE email_outbox DROP COLUMN html, DROP COLUMN ics")
