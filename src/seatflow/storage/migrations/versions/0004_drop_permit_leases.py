"""Drop the permit leases: per-restaurant concurrency is a transaction-scoped
advisory lock per slot (`storage.slots`), released by PostgreSQL when the
attempt's transaction ends; no workflow of the v1 baseline leases a row.
`permit_intervals` stays: every slot holding is still recorded there.

Revision ID: 0004_drop_permit_leases
Revises: 0003_email_outbox_claims
"""

from __future__ import annotations

from alembic import op

revision = "0004_drop_permit_leases"
down_revision = "0003_email_outbox_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS restaurant_permits")


def downgrade() -> None:
    op.execute(
        "CREATE TABLE restaurant_permits (restaurant_id text NOT NULL, slot integer NOT NULL, "
        "holder text, booking_id uuid, acquired_at timestamptz, lease_until timestamptz, "
        "PRIMARY KEY (restaurant_id, slot))"
    )
