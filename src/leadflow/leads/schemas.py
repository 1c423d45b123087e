from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.vocabulary import LeadStatus, SourceType, StopReason


class LeadCustomer(BaseModel):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None
    country: str | None = None
    timezone: str | None = None


class LeadProduct(BaseModel):
    id: str
    name: str
    quantity: int
    unit_price: str | None = Field(default=None, description="Decimal string.")


class LeadOut(BaseModel):
    id: str
    source_type: SourceType
    status: LeadStatus
    reference: str
    customer: LeadCustomer
    products: list[LeadProduct]
    amount: str | None = Field(description="Decimal string in `currency`.", examples=["49.00"])
    currency: str | None
    recovery_url: str | None
    attributes: dict[str, Any]
    captured_at: dt.datetime
    converted_at: dt.datetime | None


class LeadEventOut(BaseModel):
    id: str
    type: str
    source: str
    role: str = Field(description="`capture`, `update` or `conversion`.")
    occurred_at: dt.datetime
    received_at: dt.datetime


class FollowupOut(BaseModel):
    step: int
    status: str = Field(description="`sending`, `sent`, `deferred`, `failed` or `unknown`.")
    subject: str
    sent_at: dt.datetime | None
    last_error: str | None


class SequenceOut(BaseModel):
    """The lead's follow-up sequence, if a campaign took it."""

    campaign_id: str
    variant_id: str
    state: str = Field(description="`active`, `completed` or `stopped`.")
    stop_reason: str | None = Field(
        description="Why it stopped: " + ", ".join(f"`{reason.value}`" for reason in StopReason)
    )
    next_step: int | None = Field(description="The step waiting to go out (active only).")
    next_due_at: dt.datetime | None
    followups: list[FollowupOut]


class ConversionOut(BaseModel):
    converted_at: dt.datetime
    amount: str | None
    currency: str | None
    campaign_id: str | None = Field(description="Null when no follow-up earned it.")
    variant_id: str | None
    step: int | None


class LeadDetail(LeadOut):
    events: list[LeadEventOut]
    sequence: SequenceOut | None = None
    conversion: ConversionOut | None = None


class LeadGroupOut(BaseModel):
    key: SourceType
    name: str
    description: str = Field(description="Who the group holds, in a sentence.")
    source_type: SourceType
    status: Literal["active", "inactive"]
    open_leads: int = Field(description="Live count of open leads in this group.")


class LeadGroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "inactive"]
