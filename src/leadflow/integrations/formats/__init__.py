"""Platform webhook formats (Stripe, Shopify, WooCommerce, PayPro Global).

Each adapter is pure: it verifies a raw request (headers and body bytes, before any parsing
for header-signed platforms) and maps it to one of the outcomes below, without touching the
database. The integrations service stores and applies the outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Credentials:
    """What the merchant configured with ``PUT /v1/integrations/{platform}``."""

    secret: str
    validation_key: str | None = None


@dataclass(frozen=True)
class CustomerRef:
    """A platform's customer record, as far as this delivery tells: leadflow remembers the
    email behind the id for deliveries that carry only the id (Stripe subscriptions)."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class Normalized:
    """A delivery that becomes a leadflow event.

    ``event`` holds ``EventIn`` fields; its ``customer.email`` is None when the delivery does
    not carry one (the service then looks ``customer`` up, or records the delivery as ignored).
    """

    external_id: str
    topic: str
    event: dict[str, Any]
    customer: CustomerRef | None = None
    # Shopify orders: the checkout token they complete.
    checkout_token: str | None = None


@dataclass(frozen=True)
class Ignored:
    """A delivery leadflow records (so a redelivery is recognised) but does not act on."""

    external_id: str
    topic: str
    reason: str | None = None
    occurred_at: dt.datetime | None = None
    reference: str | None = None
    email: str | None = None
    customer: CustomerRef | None = None


@dataclass(frozen=True)
class PendingCheckout:
    """A Shopify checkout (``checkouts/create|update``): abandoned later unless an order
    completes it."""

    external_id: str
    topic: str
    token: str
    email: str | None
    first_name: str | None
    last_name: str | None
    products: list[dict[str, Any]]
    amount: Decimal | None
    currency: str | None
    recovery_url: str | None
    language: str | None
    billing_country: str | None
    shipping_country: str | None
    started_at: dt.datetime
    updated_at: dt.datetime
    completed: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ping:
    """WooCommerce's unsigned activation request: answered 200, nothing stored."""

    webhook_id: str


Outcome = Normalized | Ignored | PendingCheckout | Ping
