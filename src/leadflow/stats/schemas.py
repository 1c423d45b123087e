from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class ConvertedValue(BaseModel):
    currency: str
    amount: str


class Figures(BaseModel):
    value: dict[str, str] = Field(
        description="Revenue of attributed conversions per ISO 4217 currency (never summed "
        "across currencies).",
        examples=[{"EUR": "1280.00", "USD": "99.00"}],
    )
    value_converted: ConvertedValue | None = Field(
        default=None, description="All currencies converted with the caller's `rates`."
    )
    followups_sent: int
    targeted_leads: int = Field(description="Leads whose first follow-up went out.")
    converted_leads: int = Field(description="Conversions credited to a follow-up.")
    conversion_rate: float | None = Field(
        description="converted_leads / targeted_leads; null without targeted leads."
    )
    bounces: int = Field(
        default=0,
        description="Follow-ups a provider reported as bounced (hard or soft), counted in "
        "the hour they were sent.",
    )
    complaints: int = Field(default=0, description="Follow-ups reported as spam.")
    bounce_rate: float | None = Field(
        default=None, description="bounces / followups_sent; null without follow-ups."
    )
    complaint_rate: float | None = Field(
        default=None, description="complaints / followups_sent; null without follow-ups."
    )


class StepFigures(Figures):
    """Per step, `targeted_leads` are the leads that received this step and
    `converted_leads` the conversions credited to it."""

    step: int


class VariantFigures(Figures):
    variant_id: str
    name: str | None
    steps: list[StepFigures]


class CampaignFigures(Figures):
    campaign_id: str
    name: str | None
    steps: list[StepFigures]


class SeriesPoint(BaseModel):
    start: dt.datetime
    followups_sent: int
    targeted_leads: int
    converted_leads: int
    value: dict[str, str]


class StatsOut(BaseModel):
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    granularity: Literal["day", "hour"]
    overall: Figures
    steps: list[StepFigures]
    campaigns: list[CampaignFigures]
    series: list[SeriesPoint]

    model_config = {"populate_by_name": True}


class CampaignStatsOut(BaseModel):
    campaign_id: str
    name: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    granularity: Literal["day", "hour"]
    overall: Figures
    steps: list[StepFigures]
    variants: list[VariantFigures]
    series: list[SeriesPoint]

    model_config = {"populate_by_name": True}
