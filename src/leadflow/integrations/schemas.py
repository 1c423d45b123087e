from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Platform(StrEnum):
    STRIPE = "stripe"
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    PAYPRO = "paypro"
    # Email service providers: bounce and complaint webhooks.
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    SES = "ses"


ESPS = (Platform.POSTMARK, Platform.SENDGRID, Platform.MAILGUN, Platform.SES)


def _secret_text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class IntegrationIn(BaseModel):
    """The platform's webhook credentials. Stored to verify signatures; never shown again."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"secret": "whsec_…"}]},
    )
    secret: str = Field(
        min_length=1,
        max_length=1000,
        description=(
            "Stripe: the endpoint's signing secret (`whsec_…`). Shopify: the app's client "
            "secret, or the key shown under Settings → Notifications → Webhooks. WooCommerce: "
            "the webhook's secret. PayPro Global: the secret key (verifies `HASH`). Postmark: "
            "the `user:password` of the basic auth credentials put in the webhook URL. "
            "SendGrid: the signed event webhook's verification key (base64). Mailgun: the "
            "HTTP webhook signing key. Amazon SES: the ARN of the SNS topic that delivers "
            "its notifications."
        ),
    )
    validation_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="PayPro Global only, and required there: the validation key (verifies "
        "`SIGNATURE`).",
    )

    @field_validator("secret", "validation_key")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return _secret_text(value)


class IntegrationOut(BaseModel):
    platform: Platform
    configured: bool = Field(description="Whether a secret is set.")
    webhook_url: str = Field(
        description="The URL to configure in the platform.",
        examples=["https://leadflow.example.com/v1/webhooks/acc_…/stripe"],
    )
    updated_at: dt.datetime | None = Field(description="When the secret was last set.")


class PendingCheckoutOut(BaseModel):
    token: str
    status: str = Field(description="`pending`, `abandoned` or `completed`.")
    abandon_at: dt.datetime = Field(
        description="When it becomes an abandoned-checkout lead unless an order arrives first."
    )


class WebhookResult(BaseModel):
    """The answer to a platform delivery. A redelivery answers the first result with
    `duplicate: true` and writes nothing."""

    event_id: str | None = Field(description="The stored event; null only for pings.")
    type: str = Field(
        description="The leadflow event type (`checkout.abandoned`, `order.completed`…), or "
        "the platform's own topic when the delivery did not become a leadflow event."
    )
    duplicate: bool
    ignored: bool = Field(
        default=False, description="True when leadflow recorded the delivery but does not use it."
    )
    reason: str | None = Field(default=None, examples=["customer email unknown"])
    lead_id: str | None = None
    lead_status: str | None = None
    converted_lead_ids: list[str] = Field(default_factory=list)
    checkout: PendingCheckoutOut | None = Field(
        default=None, description="Shopify `checkouts/*`: the checkout being watched."
    )
