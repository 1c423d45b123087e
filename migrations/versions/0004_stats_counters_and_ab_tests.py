"""Hourly stats counters and A/B tests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:34:39.293790
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('ab_tests',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('criterion', sa.String(length=32), nullable=False),
    sa.Column('threshold', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('keep_best', sa.Boolean(), nullable=False),
    sa.Column('continue_variant_id', sa.String(length=40), nullable=True),
    sa.Column('min_confidence', sa.Float(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('winner_variant_id', sa.String(length=40), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ab_tests_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ab_tests_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_ab_tests'))
    )
    with op.batch_alter_table('ab_tests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ab_tests_account_id'), ['account_id'], unique=False)

    op.create_table('stats_counters',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('variant_id', sa.String(length=40), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('followups_sent', sa.Integer(), nullable=False),
    sa.Column('leads_targeted', sa.Integer(), nullable=False),
    sa.Column('conversions', sa.Integer(), nullable=False),
    sa.Column('revenue', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_stats_counters_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_stats_counters_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'campaign_id', 'variant_id', 'step', 'hour', 'currency', name=op.f('pk_stats_counters'))
    )
    with op.batch_alter_table('stats_counters', schema=None) as batch_op:
        batch_op.create_index('ix_stats_counters_account_hour', ['account_id', 'hour'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('stats_counters', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_counters_account_hour')

    op.drop_table('stats_counters')
    with op.batch_alter_table('ab_tests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ab_tests_account_id'))

    op.drop_table('ab_tests')

