"""A/B test counters kept in the transactions that assign and record visits; campaign
backfills worked through by the worker.

``ab_test_counters`` holds, per campaign and variant, the leads assigned and the unique
checkout visitors (the A/B results read it instead of counting enrollments and visits); the
counts that exist already are carried over here, grouped, into shard 0. ``backfills`` holds
each campaign backfill's status, progress and resume point.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('queued', 'running')")

CARRY_OVER = """
INSERT INTO ab_test_counters
    (campaign_id, variant_id, shard, account_id, leads_assigned, visitors)
SELECT campaign_id, variant_id, 0, max(account_id), sum(assigned), sum(visitors)
FROM (
    SELECT campaign_id, variant_id, account_id, count(*) AS assigned, 0 AS visitors
    FROM enrollments GROUP BY campaign_id, variant_id, account_id
    UNION ALL
    SELECT campaign_id, variant_id, account_id, 0 AS assigned, count(*) AS visitors
    FROM visits GROUP BY campaign_id, variant_id, account_id
) AS counted
GROUP BY campaign_id, variant_id
"""


def upgrade() -> None:
    op.create_table(
        "ab_test_counters",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("variant_id", sa.String(length=40), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("leads_assigned", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_ab_test_counters_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_ab_test_counters_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_ab_test_counters_variant_id_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "variant_id", "shard", name=op.f("pk_ab_test_counters")
        ),
    )
    op.execute(CARRY_OVER)

    op.create_table(
        "backfills",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("captured_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("after_captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("after_lead_id", sa.String(length=40), nullable=True),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_backfills_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_backfills_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfills")),
    )
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.create_index("ix_backfills_status_created", ["status", "created_at"])
        batch_op.create_index("ix_backfills_campaign_created", ["campaign_id", "created_at"])
        batch_op.create_index(
            "uq_backfills_campaign_unfinished",
            ["campaign_id"],
            unique=True,
            postgresql_where=UNFINISHED,
            sqlite_where=UNFINISHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("backfills", schema=None) as batch_op:
        batch_op.drop_index("uq_backfills_campaign_unfinished")
        batch_op.drop_index("ix_backfills_campaign_created")
        batch_op.drop_index("ix_backfills_status_created")
    op.drop_table("backfills")
    op.drop_table("ab_test_counters")
