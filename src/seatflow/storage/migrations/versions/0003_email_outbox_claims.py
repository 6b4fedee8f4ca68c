"""Email outbox: claim before sending, record permanent failures.

A send claims its row (status `sending`, `claimed_at`) and commits before it
talks to the mail server, so no database transaction stays open across SMTP;
it then marks the row `sent`, or `failed` with the (redacted) reason when the
address is permanently undeliverable or transient errors outlasted the bound.
`delivery_failures` counts failed deliveries (the bound); `send_attempts`
keeps counting messages possibly handed over (a sent row, plus a re-claimed
stale claim), so the report's duplicate count keeps its meaning.

Revision ID: 0003_email_outbox_claims
Revises: 0002_availability_idempotency
"""

from __future__ import annotations

from alembic import op

revision = "0003_email_outbox_claims"
down_revision = "0002_availability_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE email_outbox DROP CONSTRAINT IF EXISTS email_outbox_status_check")
    op.execute(
        "ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check "
        "CHECK (status IN ('pending', 'sending', 'sent', 'failed'))"
    )
    op.execute(
        "ALTER TABLE email_outbox ADD COLUMN claimed_at timestamptz, "
        "ADD COLUMN failed_at timestamptz, ADD COLUMN last_error text, "
        "ADD COLUMN delivery_failures integer NOT NULL DEFAULT 0"
    )


def downgrade() -> None:
    # A claimed or failed row goes back to pending: the old code sends it again.
    op.execute(
        "UPDATE email_outbox SET status = 'pending' WHERE status IN ('sending', 'failed')"
    )
    op.execute(
        "ALTER TABLE email_outbox DROP COLUMN claimed_at, DROP COLUMN failed_at, "
        "DROP COLUMN last_error, DROP COLUMN delivery_failures"
    )
    op.execute("ALTER TABLE email_outbox DROP CONSTRAINT IF EXISTS email_outbox_status_check")
    op.execute(
        "ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check "
        "CHECK (status IN ('pending', 'sent'))"
    )
