from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.domain import LeadStatus, SourceType


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


class LeadDetail(LeadOut):
    events: list[LeadEventOut]


class LeadGroupOut(BaseModel):
    key: SourceType
    name: str
    source_type: SourceType
    status: Literal["active", "inactive"]
    open_leads: int = Field(description="Live count of open leads in this group.")


class LeadGroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "inactive"]
