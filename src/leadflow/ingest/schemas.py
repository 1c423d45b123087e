"""The generic inbound event format."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from leadflow.kit.codes import (
    check_amount,
    check_timezone,
    normalize_country,
    normalize_currency,
    normalize_language,
)
from leadflow.kit.times import UtcDateTime
from leadflow.vocabulary import EventType


class Customer(BaseModel):
    email: EmailStr = Field(examples=["jane@example.com"])
    first_name: str | None = Field(default=None, max_length=200, examples=["Jane"])
    last_name: str | None = Field(default=None, max_length=200, examples=["Doe"])
    language: str | None = Field(
        default=None, description="BCP 47 language tag.", examples=["de", "pt-BR"]
    )
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 country code.", examples=["DE"]
    )
    timezone: str | None = Field(
        default=None, description="IANA time zone.", examples=["Europe/Berlin"]
    )

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return normalize_language(value) if value else None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return normalize_country(value) if value else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value) if value else None


class Product(BaseModel):
    id: str = Field(min_length=1, max_length=255, examples=["sku-123"])
    name: str = Field(min_length=1, max_length=500, examples=["Pro plan"])
    quantity: StrictInt = Field(default=1, ge=1, le=1_000_000)
    unit_price: Decimal | None = Field(
        default=None, description="Decimal string in the event's currency.", examples=["49.00"]
    )


_EVENT_EXAMPLE: dict[str, Any] = {
    "type": "checkout.abandoned",
    "occurred_at": "2026-01-15T10:30:00Z",
    "reference": "chk_8f2a",
    "customer": {
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "language": "de",
        "country": "DE",
        "timezone": "Europe/Berlin",
    },
    "products": [{"id": "sku-123", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}],
    "amount": "49.00",
    "currency": "EUR",
    "recovery_url": "https://shop.example.com/checkout/chk_8f2a/recover",
    "attributes": {"campaign": "spring"},
}


class EventIn(BaseModel):
    """One inbound event in leadflow's generic format.

    `reference` is the checkout, order or subscription id; a purchase
    (`order.completed`) converts open leads with the same reference, or with the
    same email captured within the attribution window before it.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})

    type: EventType
    occurred_at: UtcDateTime = Field(description="RFC 3339 timestamp with offset.")
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Checkout / order / subscription id. Required except for `lead.opt_in`.",
    )
    customer: Customer
    products: list[Product] = Field(default_factory=list, max_length=500)
    amount: Decimal | None = Field(default=None, description="Decimal string.", examples=["49.00"])
    currency: str | None = Field(default=None, description="ISO 4217.", examples=["EUR"])
    recovery_url: AnyHttpUrl | None = Field(default=None, max_length=2048)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return normalize_currency(value) if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        # Cross-field rules, each reported at the field it concerns (not at the body).
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.reference is None and self.type is not EventType.LEAD_OPT_IN:
            problems.append((("reference",), f"reference is required for {self.type.value} events"))
        priced = self.amount is not None or any(p.unit_price is not None for p in self.products)
        if priced and self.currency is None:
            problems.append(
                (("currency",), "currency is required when amount or unit prices are given")
            )
        if self.currency is not None:
            amounts: list[tuple[tuple[str | int, ...], Decimal | None]] = [
                (("amount",), self.amount)
            ]
            amounts += [
                (("products", i, "unit_price"), p.unit_price) for i, p in enumerate(self.products)
            ]
            for loc, amount in amounts:
                if amount is None:
                    continue
                try:
                    check_amount(amount, self.currency)
                except ValueError as exc:
                    problems.append((loc, str(exc)))
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{reason}", {"reason": reason}),
                        loc=loc,
                        input=None,
                    )
                    for loc, reason in problems
                ],
            )
        return self


class BatchEventIn(EventIn):
    id: str = Field(
        min_length=1,
        max_length=255,
        description="The item's own idempotency key (like `webhook-id`).",
    )


class EventBatchIn(BaseModel):
    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Up to 1,000 events, each a `BatchEventIn` (an `EventIn` with its own `id`).",
    )


class IngestResult(BaseModel):
    event_id: str
    type: EventType
    duplicate: bool = Field(description="True when this webhook id was already processed.")
    lead_id: str | None = Field(default=None, description="The lead captured or updated.")
    lead_status: str | None = None
    converted_lead_ids: list[str] = Field(
        default_factory=list, description="For purchases: the leads this purchase converted."
    )


class BatchItemError(BaseModel):
    field: str
    message: str


class BatchItemResult(BaseModel):
    id: str | None = Field(description="The item's `id`, when it had one.")
    index: int
    status: str = Field(description="`accepted`, `duplicate` or `invalid`.")
    result: IngestResult | None = None
    errors: list[BatchItemError] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    invalid: int
    results: list[BatchItemResult]
