from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from leadflow.kit.codes import check_timezone, normalize_currency
from leadflow.kit.durations import parse_duration
from leadflow.vocabulary import DEFAULT_MIN_DELAYS, AfterUnknownStep

MIN_DELAY_KEYS = tuple(s.value for s in DEFAULT_MIN_DELAYS)
# The same bound as a campaign step's delay (campaigns.schemas.MAX_DELAY): a larger minimum
# would block every campaign, and "capture time + delay" must stay inside the datetime range.
MAX_MIN_DELAY = dt.timedelta(days=365)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("name must not be blank")
    return value.strip()


# A name as given, without surrounding spaces; only spaces is refused.
NotBlank = AfterValidator(_not_blank)


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Acme Shop"]), NotBlank]


class AccountCreated(BaseModel):
    """Returned once: neither the API key nor the webhook secret is shown again."""

    id: str
    name: str
    api_key: str = Field(description="Bearer key for the merchant API. Only its hash is stored.")
    webhook_secret: str = Field(description="`whsec_…` secret that signs inbound webhooks.")


class MinDelays(BaseModel):
    """Minimum delay before the first follow-up, per source type, as ISO 8601 durations."""

    model_config = ConfigDict(extra="forbid")
    abandoned_checkout: str = Field(default="PT1H", examples=["PT1H"])
    unfinished_order: str = Field(default="PT1H", examples=["PT1H"])
    trial: str = Field(default="P1D", examples=["P1D"])
    renewal: str = Field(default="P1D", examples=["P1D"])


AFTER_UNKNOWN_STEP_DOC = (
    "What a lead's sequence does after a follow-up whose delivery is `unknown` (a worker "
    "stopped while handing it to the mail server, so it was probably delivered and is never "
    "sent again): `continue` (the default) sends the next steps as scheduled from that "
    "moment; `stop` ends the sequence there (stop reason `delivery_unknown`)."
)


MAX_HOURS_BETWEEN_EMAILS = 24 * 30
FREQUENCY_CAP_DOC = (
    "Frequency cap: at most one follow-up per address every this many hours, across all "
    "campaigns; 0 turns it off. A change applies to follow-ups as they come due; one already "
    "postponed by the old cap keeps its time."
)


class AccountSettings(BaseModel):
    account_id: str = Field(description="Read-only.")
    name: str = Field(description="Read-only.")
    lead_management_enabled: bool = Field(
        description="The global switch: when off, no follow-up is sent (leads are still captured)."
    )
    default_currency: str = Field(examples=["EUR"])
    timezone: str = Field(examples=["Europe/Berlin"])
    sender_name: str | None = None
    sender_email: str | None = None
    min_delays: MinDelays
    min_hours_between_emails: int = Field(description=FREQUENCY_CAP_DOC, examples=[12])
    after_unknown_step: AfterUnknownStep = Field(
        description=AFTER_UNKNOWN_STEP_DOC, examples=[AfterUnknownStep.CONTINUE]
    )
    updated_at: dt.datetime = Field(description="Read-only.")


class MinDelaysUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    abandoned_checkout: str | None = None
    unfinished_order: str | None = None
    trial: str | None = None
    renewal: str | None = None

    @field_validator("*")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                delay = parse_duration(value)
            except OverflowError:
                delay = MAX_MIN_DELAY + dt.timedelta(1)
            if delay > MAX_MIN_DELAY:
                raise ValueError(f"{value!r} is longer than the maximum P{MAX_MIN_DELAY.days}D")
        return value


class AccountSettingsUpdate(BaseModel):
    """The object `GET /v1/settings` returns. Read-only fields are ignored, unknown ones refused;
    fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid")
    account_id: Any = Field(default=None, description="Read-only; ignored.")
    name: Any = Field(default=None, description="Read-only; ignored.")
    updated_at: Any = Field(default=None, description="Read-only; ignored.")
    lead_management_enabled: StrictBool | None = None
    default_currency: str | None = None
    timezone: str | None = None
    sender_name: str | None = Field(default=None, max_length=200)
    sender_email: EmailStr | None = None
    min_delays: MinDelaysUpdate | None = None
    min_hours_between_emails: StrictInt | None = Field(
        default=None, ge=0, le=MAX_HOURS_BETWEEN_EMAILS, description=FREQUENCY_CAP_DOC
    )
    after_unknown_step: AfterUnknownStep | None = Field(
        default=None, description=AFTER_UNKNOWN_STEP_DOC
    )

    @field_validator("sender_name")
    @classmethod
    def _sender_name(cls, value: str | None) -> str | None:
        # It becomes the From header of every follow-up: a line break would end the header.
        if value is not None and any(c in value for c in "\r\n"):
            raise ValueError("must be a single line (no line breaks)")
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return normalize_currency(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return check_timezone(value) if value is not None else None


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["zapier"]), NotBlank]


class ApiKeyOut(BaseModel):
    """An active API key (never the key itself: only its hash is stored)."""

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(
        description="When the key last authenticated a request (to the minute); null if never."
    )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The bearer key (`lf_…`), shown only now.")


class WebhookSecretRotated(BaseModel):
    webhook_secret: str = Field(description="The new `whsec_…` secret, shown only now.")
    previous_secret_expires_at: dt.datetime | None = Field(
        description="Until then webhooks signed with the previous secret are still accepted; "
        "null when the rotation has no overlap."
    )
