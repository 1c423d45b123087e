"""Request and response bodies of the lifecycle's own API (the suppression list)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from leadflow.models.tracking import Suppression


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    reason: str = Field(default="manual", pattern=r"^(manual|bounced|complaint|unsubscribed)$")


class SuppressionOut(BaseModel):
    id: str
    email: str
    reason: str
    created_at: dt.datetime


def suppression_view(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        id=row.id,
        email=row.email,
        reason=row.reason,
        created_at=row.created_at,
    )
