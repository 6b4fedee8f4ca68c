"""Holds (slot locks): a host application holds the tables of an offered time
while its guest fills in the form, then books on the hold.

A hold is one row: the restaurant, who holds it (the API token's name), the
party and the occupied interval, the tables the engine chose (`table_ids`,
dining_tables ids) and when it expires. It counts as taken while it is live:
not expired, or claimed by a booking (`booking_id`) still awaiting its tables.
An expired hold simply stops counting; nothing needs to delete it. A booking
confirmed on its hold deletes it in the confirm's statement.

Revision ID: 0008_holds
Revises: 0007_outbox_claim_tokens
"""

from __future__ import annotations

from alembic import op

revision = "0008_holds"
down_revision = "0007_outbox_claim_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE holds ("
        " id uuid PRIMARY KEY,"
        " restaurant_id text NOT NULL REFERENCES restaurants(id) ON DELETE CASCADE,"
        " holder text NOT NULL CHECK (length(holder) BETWEEN 1 AND 200),"
        " party_size integer NOT NULL CHECK (party_size >= 1),"
        " start_at timestamptz NOT NULL,"
        " occupied tstzrange NOT NULL,"
        " table_ids integer[] NOT NULL CHECK (cardinality(table_ids) >= 1),"
        " created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        " expires_at timestamptz NOT NULL,"
        " booking_id uuid UNIQUE REFERENCES bookings(id) ON DELETE SET NULL)"
    )
    op.execute("CREATE INDEX holds_restaurant_start ON holds (restaurant_id, start_at)")
    op.execute("CREATE INDEX holds_holder ON holds (restaurant_id, holder, expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS holds")
