from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, UTCDateTime


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
    # Kept in clear: verifying an HMAC needs the secret itself, unlike API keys.
    webhook_secret: Mapped[str] = mapped_column(Text)
    # Signs unsubscribe and click tokens in emails.
    link_secret: Mapped[str] = mapped_column(Text)
    # Frequency cap per address across all campaigns.
    min_hours_between_emails: Mapped[int] = mapped_column(default=12)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
