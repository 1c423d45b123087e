"""Instant Lead Notification shapes: endpoints, deliveries, and the payload of every event."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    field_validator,
)

from leadflow.kit.fields import omit_only
from leadflow.leads.schemas import LeadOut


class IlnEventType(StrEnum):
    LEAD_CAPTURED = "lead.captured"
    LEAD_CONVERTED = "lead.converted"
    LEAD_UNSUBSCRIBED = "lead.unsubscribed"
    LEAD_BOUNCED = "lead.bounced"
    LEAD_COMPLAINED = "lead.complained"
    LEAD_FOLLOWUPS_COMPLETED = "lead.followups_completed"
    FOLLOWUP_SENT = "followup.sent"
    FOLLOWUP_FAILED = "followup.failed"
    CAMPAIGN_ACTIVATED = "campaign.activated"
    CAMPAIGN_DEACTIVATED = "campaign.deactivated"
    ABTEST_DECIDED = "abtest.decided"
    PING = "ping"


# -- payload data, one model per event type ------------------------------------------------


class LeadEventData(BaseModel):
    """`lead.captured`, `lead.unsubscribed`."""

    lead: LeadOut
    campaign_id: str | None = Field(description="The campaign the lead is enrolled in, if any.")


class MailOutcomeData(BaseModel):
    """`lead.bounced` (a hard bounce, or the soft bounce that reached the limit),
    `lead.complained` (a spam complaint): the address is suppressed and its sequences stopped."""

    lead: LeadOut
    campaign_id: str | None = Field(description="The campaign the lead is enrolled in, if any.")
    kind: Literal["hard_bounce", "soft_bounce", "complaint"]
    provider: str = Field(description="`postmark`, `sendgrid`, `mailgun` or `ses`.")
    message_id: str | None = Field(description="The follow-up it was matched to, if any.")
    step: int | None = Field(description="That follow-up's step.")
    diagnostic: str | None = Field(description="The provider's explanation, as sent.")
    occurred_at: dt.datetime


class ConversionData(BaseModel):
    campaign_id: str | None = Field(description="Null when no follow-up earned it.")
    variant_id: str | None
    step: int | None
    amount: str | None = Field(description="Decimal string.")
    currency: str | None
    converted_at: dt.datetime


class LeadConvertedData(BaseModel):
    """`lead.converted`."""

    lead: LeadOut
    conversion: ConversionData


class FollowupsCompletedData(BaseModel):
    """`lead.followups_completed`: every follow-up was sent and the lead has not bought."""

    lead: LeadOut
    campaign_id: str
    variant_id: str
    followups_sent: int


class FollowupData(BaseModel):
    """`followup.sent`, `followup.failed`."""

    message_id: str
    lead_id: str
    campaign_id: str
    variant_id: str
    step: int
    to: str
    subject: str
    sent_at: dt.datetime | None = None
    error: str | None = None


class CampaignStatusData(BaseModel):
    """`campaign.activated`, `campaign.deactivated`."""

    campaign_id: str
    name: str
    status: str


class AbTestDecidedData(BaseModel):
    """`abtest.decided`: the A/B test ended, with a winner (`decided`) or without one
    (`inconclusive`)."""

    campaign_id: str
    state: Literal["decided", "inconclusive"]
    winner_variant_id: str | None
    winner_name: str | None
    decided_at: dt.datetime
    reason: str


class PingData(BaseModel):
    endpoint_id: str


class Notification(BaseModel):
    """The body of every notification."""

    type: str = Field(examples=["lead.captured"])
    timestamp: dt.datetime
    data: dict[str, Any]


# -- endpoints and deliveries ----------------------------------------------------------------


def _subscribable(types: list[IlnEventType] | None) -> list[IlnEventType] | None:
    if types is not None and IlnEventType.PING in types:
        raise ValueError("ping is sent on request (POST …/test), it cannot be subscribed to")
    return types


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl = Field(description="https only; must resolve to public addresses.")
    description: str | None = Field(default=None, max_length=500)
    event_types: list[IlnEventType] = Field(
        default_factory=list, description="Empty = every event type."
    )
    enabled: StrictBool = True
    campaign_id: str | None = Field(
        default=None, description="Campaign-level ILN: only events about that campaign's leads."
    )

    _types = field_validator("event_types")(_subscribable)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Omitted keeps the value; null is refused, so the schema does not offer it.
    url: AnyHttpUrl | None = Field(default=None, json_schema_extra=omit_only)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[IlnEventType] | None = Field(default=None, json_schema_extra=omit_only)
    enabled: StrictBool | None = Field(default=None, json_schema_extra=omit_only)
    campaign_id: str | None = None

    _types = field_validator("event_types")(_subscribable)


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    campaign_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="`whsec_…` signing secret, shown only now.")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new `whsec_…` secret, shown only now.")
    previous_secret_expires_at: dt.datetime | None = Field(
        description="Until then notifications carry signatures with both secrets."
    )


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_type: str
    webhook_id: str = Field(description="The `webhook-id` header, stable across retries.")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    payload: Notification


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    IlnEventType.LEAD_CAPTURED: LeadEventData,
    IlnEventType.LEAD_UNSUBSCRIBED: LeadEventData,
    IlnEventType.LEAD_BOUNCED: MailOutcomeData,
    IlnEventType.LEAD_COMPLAINED: MailOutcomeData,
    IlnEventType.LEAD_CONVERTED: LeadConvertedData,
    IlnEventType.LEAD_FOLLOWUPS_COMPLETED: FollowupsCompletedData,
    IlnEventType.FOLLOWUP_SENT: FollowupData,
    IlnEventType.FOLLOWUP_FAILED: FollowupData,
    IlnEventType.CAMPAIGN_ACTIVATED: CampaignStatusData,
    IlnEventType.CAMPAIGN_DEACTIVATED: CampaignStatusData,
    IlnEventType.ABTEST_DECIDED: AbTestDecidedData,
    IlnEventType.PING: PingData,
}


def notification_model(event_type: str) -> type[BaseModel]:
    """The full body of one event type (for the OpenAPI `webhooks` section)."""
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_"))
    return create_model(
        f"{name}Notification",
        type=(Literal[event_type], Field(examples=[event_type])),  # type: ignore[arg-type]
        timestamp=(dt.datetime, ...),
        data=(PAYLOAD_MODELS[event_type], ...),
    )
