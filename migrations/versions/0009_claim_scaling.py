"""Claiming due work without scanning paused or finished enrollments.

Enrollments keep their lead's source type, and a partial index holds active enrollments
alone, per campaign and source type: the claim reads only the due part of running campaigns
and lead groups that are switched on.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_type", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE enrollments SET source_type ="
        " (SELECT leads.source_type FROM leads WHERE leads.id = enrollments.lead_id)"
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollments_claim",
            ["campaign_id", "source_type", "next_due_at"],
            unique=False,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_claim", sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.drop_column("source_type")
