"""Opt-in capture: publishable keys, consent records and double opt-in confirmations.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 12:30:00
"""

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("publishable_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("capture_settings", JSON, server_default="{}", nullable=False))
        batch.create_unique_constraint(op.f("uq_accounts_publishable_key"), ["publishable_key"])
    # Every existing account gets its key, as a new one does.
    accounts = sa.table("accounts", sa.column("id", sa.String), sa.column("publishable_key"))
    bind = op.get_bind()
    for (account_id,) in bind.execute(sa.select(accounts.c.id)).all():
        bind.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(publishable_key="pk_" + secrets.token_urlsafe(24))
        )
    # The built-in "Subscribers" group (opt-in leads) for every existing account, after
    # its other groups, as a new account gets it.
    groups = sa.table(
        "lead_groups",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("key", sa.String),
        sa.column("name", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("position", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = dt.datetime.now(dt.UTC)
    for (account_id,) in bind.execute(sa.select(accounts.c.id)).all():
        bind.execute(
            groups.insert().values(
                id="grp_" + secrets.token_hex(12),
                account_id=account_id,
                key="opt_in",
                name="Subscribers",
                active=True,
                position=4,
                created_at=now,
                updated_at=now,
            )
        )
    op.create_table(
        "capture_consents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("consent_text", sa.Text(), nullable=True),
        sa.Column("consent_version", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("confirmation_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_capture_consents_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_consents")),
    )
    op.create_index(
        "ix_capture_consents_account_email", "capture_consents", ["account_id", "email"]
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM lead_groups WHERE key = 'opt_in'"))
    op.drop_index("ix_capture_consents_account_email", table_name="capture_consents")
    op.drop_table("capture_consents")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("uq_accounts_publishable_key"), type_="unique")
        batch.drop_column("capture_settings")
        batch.drop_column("publishable_key")
