from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, Money, UTCDateTime
from leadflow.kit.secrets import EncryptedText


class Integration(Base):
    """A platform's webhook credentials for one account. Verifying a signature needs the
    secret itself: stored encrypted with the envelope key. The API never returns them."""

    __tablename__ = "integrations"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(EncryptedText("integrations.secret"))
    # PayPro Global only: the key of the SHA-256 ``SIGNATURE`` field.
    validation_key: Mapped[str | None] = mapped_column(EncryptedText("integrations.validation_key"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PlatformCustomer(Base):
    """Who a platform's customer id is, learned from deliveries that carry both (Stripe
    checkout sessions, invoices, customers), for the ones that carry only the id
    (subscriptions)."""

    __tablename__ = "platform_customers"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ShopifyCheckout(Base):
    """A Shopify checkout seen through ``checkouts/create|update``. Shopify sends no
    "abandoned" event: a worker turns it into a ``checkout.abandoned`` lead once
    ``abandon_at`` passes without an order (``pending`` -> ``abandoned``); an order
    completes it (``pending`` -> ``completed``)."""

    __tablename__ = "shopify_checkouts"
    __table_args__ = (
        UniqueConstraint("account_id", "token"),
        Index("ix_shopify_checkouts_due", "status", "abandon_at"),
        Index("ix_shopify_checkouts_account_email", "account_id", "email"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    total_price: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    abandoned_checkout_url: Mapped[str | None] = mapped_column(Text)
    customer_locale: Mapped[str | None] = mapped_column(String(35))
    billing_country_code: Mapped[str | None] = mapped_column(String(2))
    shipping_country_code: Mapped[str | None] = mapped_column(String(2))
    # The ``checkout.abandoned`` EventIn (JSON) the worker ingests; null while no email is known.
    event: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Shopify's own created_at / updated_at of the newest version applied.
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    checkout_updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    abandon_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    abandoned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lead_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
