"""Platform integrations: webhook credentials, learned platform customers, Shopify checkouts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 19:48:47.482971
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('integrations',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('validation_key', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_integrations_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'platform', name=op.f('pk_integrations'))
    )
    op.create_table('platform_customers',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_platform_customers_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'platform', 'customer_id', name=op.f('pk_platform_customers'))
    )
    op.create_table('shopify_checkouts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('token', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('line_items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('total_price', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('abandoned_checkout_url', sa.Text(), nullable=True),
    sa.Column('customer_locale', sa.String(length=35), nullable=True),
    sa.Column('billing_country_code', sa.String(length=2), nullable=True),
    sa.Column('shipping_country_code', sa.String(length=2), nullable=True),
    sa.Column('event', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checkout_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('abandon_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('abandoned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lead_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_shopify_checkouts_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shopify_checkouts')),
    sa.UniqueConstraint('account_id', 'token', name=op.f('uq_shopify_checkouts_account_id_token'))
    )
    with op.batch_alter_table('shopify_checkouts', schema=None) as batch_op:
        batch_op.create_index('ix_shopify_checkouts_account_email', ['account_id', 'email'], unique=False)
        batch_op.create_index('ix_shopify_checkouts_due', ['status', 'abandon_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('shopify_checkouts', schema=None) as batch_op:
        batch_op.drop_index('ix_shopify_checkouts_due')
        batch_op.drop_index('ix_shopify_checkouts_account_email')

    op.drop_table('shopify_checkouts')
    op.drop_table('platform_customers')
    op.drop_table('integrations')
