"""Email outbox: every claim holds a token, and two final statuses.

A claim writes a fresh `claim_token` (and `claim_token_at`); marking the row
sent, failed or pending again names that token, so a send whose row was
re-armed meanwhile (a second move rewrote the message) or re-claimed after its
lease never marks the newer message. The token stays while the send is in
flight even when a move re-arms the row to `pending`, so the next claim of
that booking's messages waits for it: one message at a time per guest, in
order. `no_address`: the booking has no guest address, nothing is sent.
`withdrawn`: the booking left the state the message speaks of (a confirmation
or table change of a cancelled booking) before it was sent.

Revision ID: 0007_outbox_claim_tokens
Revises: 0006_guest_messages
"""

from __future__ import annotations

from alembic import op

revision = "0007_outbox_claim_tokens"
down_revision = "0006_guest_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE email_outbox DROP CONSTRAINT IF EXISTS email_outbox_status_check")
    op.execute(
        "ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check CHECK (status IN "
        "('pending', 'sending', 'sent', 'failed', 'no_address', 'withdrawn'))"
    )
    op.execute(
        "ALTER TABLE email_outbox ADD COLUMN claim_token uuid, "
        "ADD COLUMN claim_token_at timestamptz"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE email_outbox DROP COLUMN claim_token, DROP COLUMN claim_token_at")
    # The old code knows neither status: nothing is to be sent for either.
    op.execute(
        "UPDATE email_outbox SET status = 'failed', last_error = status "
        "WHERE status IN ('no_address', 'withdrawn')"
    )
    op.execute("ALTER TABLE email_outbox DROP CONSTRAINT IF EXISTS email_outbox_status_check")
    op.execute(
        "ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check "
        "CHECK (status IN ('pending', 'sending', 'sent', 'failed'))"
    )
