"""Zones a floor plan declares equivalent (`equivalent_zones`), kept on the
restaurant as a JSON list of groups of zone ids: re-packing may move a guest
between the zones of one group as if they were one zone.

Revision ID: 0009_zone_groups
Revises: 0008_holds
"""

from __future__ import annotations

from alembic import op

revision = "0009_zone_groups"
down_revision = "0008_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE restaurants ADD COLUMN zone_groups jsonb NOT NULL DEFAULT '[]'")


def downgrade() -> None:
    op.execute("ALTER TABLE restaurants DROP COLUMN zone_groups")
