from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, UTCDateTime
from leadflow.kit.secrets import EncryptedText


class Account(Base):
    """A merchant (tenant). Every other row carries its ``account_id``."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lead_management_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    sender_name: Mapped[str | None] = mapped_column(String(200))
    sender_email: Mapped[str | None] = mapped_column(String(320))
    # {source_type: seconds}; a missing key means the built-in default.
    min_delays: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Verifying an HMAC needs the secret itself (unlike API keys): stored encrypted with the
    # envelope key. After a rotation the previous secret still verifies until it expires.
    webhook_secret: Mapped[str] = mapped_column(EncryptedText("accounts.webhook_secret"))
    previous_webhook_secret: Mapped[str | None] = mapped_column(
        EncryptedText("accounts.previous_webhook_secret")
    )
    previous_webhook_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Signs unsubscribe and click tokens in emails.
    link_secret: Mapped[str] = mapped_column(Text)
    # Frequency cap per address across all campaigns.
    min_hours_between_emails: Mapped[int] = mapped_column(default=12)
    # After a step whose delivery is unknown (its worker died during SMTP DATA): "continue"
    # the sequence (the step most likely arrived) or "stop" it.
    after_unknown_step: Mapped[str] = mapped_column(
        String(16), default="continue", server_default="continue"
    )
    # The capture forms' key (``pk_…``): public by design (it sits in the merchant's pages and
    # can only capture), so kept in clear; unique, as it alone finds the account.
    publishable_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Capture form settings (origins, thank-you URL, double opt-in, consent, perk):
    # accounts.capture.CaptureSettings.
    capture_settings: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, server_default="{}"
    )


class ApiKey(Base):
    """A bearer key of the merchant API: only its SHA-256 hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), server_default="default")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Updated at most once a minute (accounts.service.LAST_USED_PRECISION).
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
