from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from leadflow.abtest.schemas import AbTestSettings, AbTestState
from leadflow.kit.codes import normalize_country, normalize_language
from leadflow.kit.durations import parse_duration
from leadflow.kit.fields import omit_only
from leadflow.kit.times import UtcDateTime

CampaignSource = Literal["all", "unfinished_order", "abandoned_checkout", "trial", "renewal"]
CampaignStatus = Literal["active", "inactive"]
MAX_STEPS = 3
# A follow-up more than a year after the previous one is no follow-up; the cap also keeps
# "capture time + delay" inside the datetime range (P999999999D crashed enrollment).
MAX_DELAY = dt.timedelta(days=365)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SendWindow(BaseModel):
    """Local hours (the lead's time zone, else the account's) in which follow-ups may go out.
    An `end` before `start` spans midnight (`22:00`-`06:00`)."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["20:00"])

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be a 24-hour time HH:MM")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class StepIn(BaseModel):
    """A follow-up: a predefined `template` key, or a custom `subject` + `html` + `text`."""

    model_config = ConfigDict(extra="forbid")
    delay: str = Field(
        description="ISO 8601 duration. Step 1: after the lead was captured (never less than the "
        "account's minimum for the lead's source type); later steps: after the previous one.",
        examples=["PT2H", "P1D"],
    )
    template: str | None = Field(default=None, examples=["abandoned_checkout/1"])
    subject: str | None = Field(default=None, max_length=998)
    html: str | None = None
    text: str | None = None
    discount_code: str | None = Field(default=None, max_length=64)

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        try:
            delay = parse_duration(value)
        except OverflowError:
            raise ValueError(f"{value!r} is too long a delay") from None
        if delay > MAX_DELAY:
            raise ValueError(f"{value!r} is longer than the maximum delay P{MAX_DELAY.days}D")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> StepIn:
        custom = [self.subject, self.html, self.text]
        if self.template is not None and any(part is not None for part in custom):
            raise ValueError("give either a template key or a custom subject/html/text, not both")
        if self.template is None and not all(part is not None for part in custom):
            raise ValueError("give a template key, or all three of subject, html and text")
        return self


def _check_step_count(steps: list[StepIn]) -> list[StepIn]:
    if len(steps) > MAX_STEPS:
        raise ValueError(f"a variant has at most {MAX_STEPS} follow-up steps, got {len(steps)}")
    return steps


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, examples=["A"])
    weight: StrictInt = Field(default=1, ge=1, le=1000, description="Share of new leads.")
    steps: list[StepIn] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _at_most_three(cls, steps: list[StepIn]) -> list[StepIn]:
        return _check_step_count(steps)


class VariantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    weight: StrictInt | None = Field(default=None, ge=1, le=1000)
    steps: list[StepIn] | None = Field(default=None, min_length=1)

    @field_validator("steps")
    @classmethod
    def _at_most_three(cls, steps: list[StepIn] | None) -> list[StepIn] | None:
        return _check_step_count(steps) if steps is not None else None


def _clean_name(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("name must not be blank")
    return stripped


def _product_ids(values: list[str]) -> list[str]:
    if any(not v.strip() or len(v) > 255 for v in values):
        raise ValueError("product ids must be 1-255 characters")
    return list(dict.fromkeys(values))


def _codes(values: list[str], normalize: Callable[[str], str]) -> list[str]:
    out: list[str] = []
    for value in values:
        code = normalize(value)
        if code not in out:
            out.append(code)
    return out


class CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=2000)
    products: list[str] = Field(
        default_factory=list, max_length=500, description="Product ids; empty = all products."
    )
    languages: list[str] = Field(
        default_factory=list, max_length=100, description="BCP 47 tags; empty = all languages."
    )
    countries: list[str] = Field(
        default_factory=list, max_length=250, description="ISO 3166-1 alpha-2; empty = all."
    )
    starts_at: UtcDateTime | None = None
    ends_at: UtcDateTime | None = None
    priority: StrictInt = Field(default=0, ge=-1000, le=1000, description="Higher wins.")
    send_window: SendWindow | None = None

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        return _codes(values, normalize_language)

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        return _codes(values, normalize_country)

    @field_validator("products")
    @classmethod
    def _products(cls, values: list[str]) -> list[str]:
        return _product_ids(values)


class CampaignIn(CampaignFields):
    """Step 1 (who: name, source, filters, schedule) and optionally step 2 (`variants`)."""

    name: str = Field(min_length=1, max_length=200, examples=["Cart recovery DE"])
    source: CampaignSource = "all"
    status: CampaignStatus = Field(
        default="inactive", description="Campaigns start inactive; activate when ready."
    )
    variants: list[VariantIn] = Field(default_factory=list, max_length=10)
    ab_test: AbTestSettings | None = Field(
        default=None, description="A/B test settings, for campaigns with two or more variants."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value)

    @model_validator(mode="after")
    def _schedule(self) -> CampaignIn:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            # Reported at `ends_at` (as PATCH does), not at the body.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "ends_at must be after starts_at"),
                        loc=("ends_at",),
                        input=self.ends_at,
                    )
                ],
            )
        return self


class CampaignUpdate(BaseModel):
    """Any step-1 field; omitted fields keep their value. Variants have their own routes."""

    model_config = ConfigDict(extra="forbid")
    # Omitted keeps the value; null is refused for the fields that cannot be empty, and their
    # schema does not offer it.
    name: str | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra=omit_only
    )
    description: str | None = Field(default=None, max_length=2000)
    source: CampaignSource | None = Field(default=None, json_schema_extra=omit_only)
    status: CampaignStatus | None = Field(default=None, json_schema_extra=omit_only)
    products: list[str] | None = Field(default=None, max_length=500, json_schema_extra=omit_only)
    languages: list[str] | None = Field(default=None, max_length=100, json_schema_extra=omit_only)
    countries: list[str] | None = Field(default=None, max_length=250, json_schema_extra=omit_only)
    starts_at: UtcDateTime | None = None
    ends_at: UtcDateTime | None = None
    priority: StrictInt | None = Field(default=None, ge=-1000, le=1000, json_schema_extra=omit_only)
    send_window: SendWindow | None = None
    ab_test: AbTestSettings | None = Field(
        default=None, description="Set or change the A/B test while it runs; null removes it."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_name(value) if value is not None else None

    @field_validator("products")
    @classmethod
    def _products(cls, values: list[str] | None) -> list[str] | None:
        return _product_ids(values) if values is not None else None

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str] | None) -> list[str] | None:
        return _codes(values, normalize_language) if values is not None else None

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: list[str] | None) -> list[str] | None:
        return _codes(values, normalize_country) if values is not None else None


class StepOut(BaseModel):
    step: int = Field(description="1, 2 or 3.")
    delay: str
    template: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    discount_code: str | None = None


class VariantOut(BaseModel):
    id: str
    name: str
    weight: int
    steps: list[StepOut]


class CampaignOut(BaseModel):
    id: str
    name: str
    description: str | None
    source: CampaignSource
    products: list[str]
    languages: list[str]
    countries: list[str]
    status: CampaignStatus
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    priority: int
    send_window: SendWindow | None
    variants: list[VariantOut]
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    ab_test: AbTestState | None = Field(
        default=None, description="A/B test settings and outcome (see `/ab-test` for results)."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Advice that did not block the change."
    )


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    captured_from: UtcDateTime | None = Field(
        default=None, description="Only leads captured at or after this instant."
    )


class BackfillJobOut(BaseModel):
    """A campaign backfill and its progress, as the worker records it chunk by chunk."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    campaign_id: str
    status: Literal["queued", "running", "completed", "stopped", "failed"] = Field(
        description="`queued` until a worker takes it, `running` while it works through the "
        "leads, then `completed`; `stopped` if the campaign stopped running first (see "
        "`reason`), `failed` on an unexpected error (see `reason`)."
    )
    captured_from: UtcDateTime | None = Field(
        description="Only leads captured at or after this instant."
    )
    scanned: int = Field(
        description="Open leads of the campaign's source (captured since `captured_from`) "
        "examined so far, including those another campaign had taken."
    )
    enrolled: int = Field(description="Leads enrolled so far (those that matched the filters).")
    reason: str | None = Field(description="Why it stopped or failed.")
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    updated_at: UtcDateTime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: str | None = Field(default=None, description="Default: the first variant.")
    step: StrictInt = Field(default=1, ge=1, le=MAX_STEPS)
    lead_id: str | None = Field(default=None, description="A real lead; default: a sample lead.")
    language: str | None = Field(default=None, description="For the sample lead.")

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return normalize_language(value) if value else None


class PreviewOut(BaseModel):
    to: str
    language: str
    subject: str
    html: str
    text: str


class TemplateOut(BaseModel):
    key: str
    source_type: str
    step: int
    languages: list[str]
    variables: list[str]
