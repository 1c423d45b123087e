"""An account's capture forms: its publishable key and their settings (origins allowed to
post, thank-you page, double opt-in, consent text, perk). Stored on the account row, which
this package alone writes."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.accounts import Account

PUBLISHABLE_PREFIX = "pk_"
MAX_ORIGINS = 50

ORIGINS_DOC = (
    "Web origins (`https://shop.example.com`) whose pages may post to the capture endpoint "
    "from a script (CORS). A plain HTML form needs none; other origins get no CORS headers."
)
DOUBLE_OPT_IN_DOC = (
    "When on, a sign-up first gets a confirmation email with a link; the lead is created "
    "(and followed up) only once the link is opened. Unconfirmed sign-ups expire."
)
PERK_DOC = (
    "An incentive delivered with the sign-up (for example a welcome discount code): shown in "
    "the confirmation email and available to templates as `lead.attributes.perk`."
)


def new_publishable_key() -> str:
    return PUBLISHABLE_PREFIX + secrets.token_urlsafe(24)


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an origin like https://shop.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{value!r} is not an origin (no path, query or user)")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class CaptureSettings(BaseModel):
    publishable_key: str = Field(
        description="`pk_…`: safe in a web page, it can only capture. Read-only; rotate it "
        "with `POST /v1/capture/key`."
    )
    allowed_origins: list[str] = Field(description=ORIGINS_DOC)
    thank_you_url: str | None = Field(
        description="Where a plain HTML form post is redirected (303) after a sign-up."
    )
    double_opt_in: bool = Field(description=DOUBLE_OPT_IN_DOC)
    consent_text: str | None = Field(
        description="The consent wording shown next to the checkbox; stored with each sign-up "
        "unless the form sends its own."
    )
    consent_version: str | None = Field(description="A version label of that wording.")
    perk: str | None = Field(description=PERK_DOC, examples=["WELCOME10"])


class CaptureSettingsUpdate(BaseModel):
    """The object `GET /v1/capture/settings` returns; fields left out keep their value, null
    clears an optional one; `publishable_key` is read-only and ignored."""

    model_config = ConfigDict(extra="forbid")
    publishable_key: Any = Field(default=None, description="Read-only; ignored.")
    allowed_origins: list[Annotated[str, AfterValidator(_origin)]] | None = Field(
        default=None, max_length=MAX_ORIGINS, description=ORIGINS_DOC
    )
    thank_you_url: AnyHttpUrl | None = Field(default=None, max_length=2048)
    double_opt_in: StrictBool | None = Field(default=None, description=DOUBLE_OPT_IN_DOC)
    consent_text: str | None = Field(default=None, max_length=2000)
    consent_version: str | None = Field(default=None, max_length=100)
    perk: str | None = Field(default=None, max_length=500, description=PERK_DOC)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        return sorted(set(value)) if value is not None else None


def capture_settings_of(account: Account) -> CaptureSettings:
    stored = account.capture_settings or {}
    return CaptureSettings(
        publishable_key=account.publishable_key or "",
        allowed_origins=list(stored.get("allowed_origins", [])),
        thank_you_url=stored.get("thank_you_url"),
        double_opt_in=bool(stored.get("double_opt_in", False)),
        consent_text=stored.get("consent_text"),
        consent_version=stored.get("consent_version"),
        perk=stored.get("perk"),
    )


async def change_capture_settings(
    session: AsyncSession, account: Account, body: CaptureSettingsUpdate, now: dt.datetime
) -> CaptureSettings:
    changes = body.model_dump(mode="json", exclude_unset=True, exclude={"publishable_key"})
    stored = dict(account.capture_settings or {})
    for field, value in changes.items():
        if value is None and field in ("allowed_origins", "double_opt_in"):
            continue
        stored[field] = value
    account.capture_settings = stored
    if account.publishable_key is None:
        account.publishable_key = new_publishable_key()
    account.updated_at = now
    await session.flush()
    return capture_settings_of(account)


async def rotate_publishable_key(
    session: AsyncSession, account: Account, now: dt.datetime
) -> CaptureSettings:
    """A new key at once: forms with the old one are refused (404) from now on."""
    account.publishable_key = new_publishable_key()
    account.updated_at = now
    await session.flush()
    return capture_settings_of(account)


async def account_for_publishable_key(session: AsyncSession, key: str) -> Account | None:
    if not key.startswith(PUBLISHABLE_PREFIX) or len(key) > 64:
        return None
    found = await session.scalars(select(Account).where(Account.publishable_key == key))
    return found.one_or_none()
