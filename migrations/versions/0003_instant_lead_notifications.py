"""Instant Lead Notifications: endpoints and the delivery outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 19:29:05.130252
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('iln_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('event_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('campaign_id', sa.String(length=40), nullable=True),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('previous_secret', sa.Text(), nullable=True),
    sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_iln_endpoints_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_iln_endpoints_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iln_endpoints'))
    )
    with op.batch_alter_table('iln_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iln_endpoints_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iln_endpoints_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('iln_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('webhook_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_iln_deliveries_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['endpoint_id'], ['iln_endpoints.id'], name=op.f('fk_iln_deliveries_endpoint_id_iln_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iln_deliveries'))
    )
    with op.batch_alter_table('iln_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_iln_deliveries_account_created', ['account_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_iln_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_iln_deliveries_endpoint_id'), ['endpoint_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('iln_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iln_deliveries_endpoint_id'))
        batch_op.drop_index('ix_iln_deliveries_due')
        batch_op.drop_index('ix_iln_deliveries_account_created')

    op.drop_table('iln_deliveries')
    with op.batch_alter_table('iln_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iln_endpoints_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_iln_endpoints_account_id'))

    op.drop_table('iln_endpoints')

