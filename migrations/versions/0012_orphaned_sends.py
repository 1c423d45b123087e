"""Messages in flight indexed alone, so that a dead worker's sends whose sequence stopped can be
found without scanning every message.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENDING = sa.text("status = 'sending'")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messages_sending",
            ["enrollment_id"],
            unique=False,
            sqlite_where=SENDING,
            postgresql_where=SENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sending", sqlite_where=SENDING, postgresql_where=SENDING)
