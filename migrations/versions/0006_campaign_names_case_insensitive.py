"""Campaign names unique among live campaigns regardless of case.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 20:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("archived_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_campaigns_account_live_name", sqlite_where=LIVE, postgresql_where=LIVE
        )
        batch_op.create_index(
            "uq_campaigns_account_live_lower_name",
            ["account_id", sa.text("lower(name)")],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_campaigns_account_live_lower_name", sqlite_where=LIVE, postgresql_where=LIVE
        )
        batch_op.create_index(
            "uq_campaigns_account_live_name",
            ["account_id", "name"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
