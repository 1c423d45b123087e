"""Credentials: webhook secret rotation, named API keys with their last use.

Secrets at rest need no schema change: the encrypted values (``lfenc:v1:…``) live in the same
text columns. Rows written before encryption keep their plaintext and still read (a migration
cannot know the envelope key); `leadflow secret-key rotate` encrypts them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_webhook_secret", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_webhook_secret_expires_at", sa.DateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=100), server_default="default", nullable=False)
        )
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("name")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("previous_webhook_secret_expires_at")
        batch_op.drop_column("previous_webhook_secret")
