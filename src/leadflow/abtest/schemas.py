from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
    model_validator,
)

from leadflow.kit.codes import normalize_currency
from leadflow.kit.times import UtcDateTime

MAX_THRESHOLD = Decimal("1e12")
Criterion = Literal["conversions", "revenue", "unique_visitors", "time_range"]


class AbTestSettings(BaseModel):
    """How a campaign with two or more variants picks its winner."""

    model_config = ConfigDict(extra="forbid")
    criterion: Criterion = Field(
        description="`conversions`: first variant to reach `threshold` conversions; `revenue`: "
        "first to reach `threshold` in `currency`; `unique_visitors`: first to reach `threshold` "
        "unique checkout visitors (tracked links); `time_range`: at `ends_at`, the best "
        "conversion rate."
    )
    threshold: Decimal | None = Field(default=None, description="For the first three criteria.")
    currency: str | None = Field(default=None, description="ISO 4217, for `revenue`.")
    ends_at: UtcDateTime | None = Field(
        default=None,
        description="End of a `time_range` test; for the others an optional safety end, after "
        "which the best conversion rate wins.",
    )
    keep_best: StrictBool = Field(
        default=False, description="After the decision, new leads go only to the winner."
    )
    continue_variant_id: str | None = Field(
        default=None,
        description="Instead of keep_best: the variant new leads go to once the test ends. With "
        "neither, the campaign keeps splitting traffic and only reports.",
    )
    min_confidence: StrictFloat | None = Field(
        default=None,
        gt=0.5,
        lt=1,
        description="For a decision by conversion rate: the winner's probability of being best "
        "must reach this (e.g. 0.95), else the test ends `inconclusive`.",
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return normalize_currency(value) if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> AbTestSettings:
        if self.criterion != "time_range":
            if self.threshold is None or not self.threshold.is_finite() or self.threshold <= 0:
                raise ValueError(f"threshold must be a positive number for {self.criterion}")
            if self.threshold >= MAX_THRESHOLD:
                raise ValueError(f"threshold must be below {MAX_THRESHOLD}")
            if self.criterion != "revenue" and self.threshold != self.threshold.to_integral_value():
                raise ValueError("threshold must be a whole number for this criterion")
        elif self.ends_at is None:
            raise ValueError("ends_at is required for a time_range test")
        if self.criterion == "revenue" and self.currency is None:
            raise ValueError("currency is required for a revenue test")
        if self.keep_best and self.continue_variant_id:
            raise ValueError("set keep_best or continue_variant_id, not both")
        return self


class AbTestSettingsOut(AbTestSettings):
    """A campaign's A/B test settings as answered (amounts as decimal strings)."""


class AbTestState(AbTestSettingsOut):
    state: Literal["running", "decided", "inconclusive"]
    winner_variant_id: str | None
    decided_at: dt.datetime | None
    reason: str | None


class VariantResult(BaseModel):
    variant_id: str
    name: str
    weight: int
    leads_assigned: int
    followups_sent: dict[str, int] = Field(description='Per step: `{"1": 120, "2": 80}`.')
    targeted_leads: int = Field(description="Leads of this variant that got a follow-up.")
    unique_visitors: int
    conversions: int
    conversion_rate: float | None
    conversion_rate_ci95: tuple[float, float] | None = Field(description="Wilson interval.")
    revenue: dict[str, str]
    probability_best: float | None = Field(
        description="Posterior probability (Beta-Binomial) that this variant converts best."
    )
    p_value_vs_first: float | None = Field(
        description="Two-proportion z-test against the first variant (null for the first)."
    )


class AbTestResult(BaseModel):
    campaign_id: str
    settings: AbTestSettingsOut | None
    state: Literal["running", "decided", "inconclusive"]
    winner_variant_id: str | None
    decided_at: dt.datetime | None
    reason: str | None
    variants: list[VariantResult]


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: str = Field(description="The variant new leads go to from now on.")
