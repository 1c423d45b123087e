"""ILN retries: a time horizon that a receiver's Retry-After does not use up.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("iln_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("schedule_step", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("iln_deliveries", schema=None) as batch_op:
        batch_op.drop_column("retry_until")
        batch_op.drop_column("schedule_step")
