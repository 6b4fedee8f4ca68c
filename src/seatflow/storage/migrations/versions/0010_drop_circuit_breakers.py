"""Drop `circuit_breakers`: a breaker's state was upserted there on every
change and nothing read it. The breakers' record is their opened / closed
events in `observability_events` (`seatflow report` reads them), and their
state is in the process's metrics (`seatflow_circuit_breaker_state`).

The release before this one stopped writing it; the one before that still
upserted it when marking a guest message sent, so the drop waited a release
(docs/deploy.md: a table goes a release after code stops writing it).

Revision ID: 0010_drop_circuit_breakers
Revises: 0009_zone_groups
"""

from __future__ import annotations

from alembic import op

revision = "0010_drop_circuit_breakers"
down_revision = "0009_zone_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE circuit_breakers")


def downgrade() -> None:
    op.execute(
        """
        CREATE TABLE circuit_breakers (
            name text PRIMARY KEY,
            state text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
            consecutive_failures integer NOT NULL DEFAULT 0,
            opened_at timestamptz,
            open_until timestamptz
        );
        """
    )
