"""Bounces and complaints from email service providers.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_outcomes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_mail_outcomes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outcomes")),
        sa.UniqueConstraint(
            "account_id",
            "provider",
            "external_id",
            name=op.f("uq_mail_outcomes_account_id_provider_external_id"),
        ),
    )
    op.create_index(
        "ix_mail_outcomes_recipient",
        "mail_outcomes",
        ["account_id", "email", "kind", "occurred_at"],
    )
    op.add_column("messages", sa.Column("bounce", sa.String(length=16), nullable=True))
    op.add_column("messages", sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "stats_counters",
        sa.Column("bounces", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "stats_counters",
        sa.Column("complaints", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("stats_counters") as batch:
        batch.drop_column("complaints")
        batch.drop_column("bounces")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("bounced_at")
        batch.drop_column("bounce")
    op.drop_index("ix_mail_outcomes_recipient", table_name="mail_outcomes")
    op.drop_table("mail_outcomes")
