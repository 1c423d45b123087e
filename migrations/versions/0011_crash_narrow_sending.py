"""Crash-narrow sending: the moment a follow-up's SMTP DATA began, and what an account's
sequences do after a step whose delivery is unknown.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_started_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "after_unknown_step",
                sa.String(length=16),
                server_default="continue",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("after_unknown_step")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("data_started_at")
