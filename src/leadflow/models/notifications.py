from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, UTCDateTime
from leadflow.kit.secrets import EncryptedText


class IlnEndpoint(Base):
    """A merchant's receiver for Instant Lead Notifications."""

    __tablename__ = "iln_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty = all
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Campaign-level ILN: only events about this campaign's leads.
    campaign_id: Mapped[str | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    # Needed in clear to sign (stored encrypted); the API shows it only when created or rotated.
    secret: Mapped[str] = mapped_column(EncryptedText("iln_endpoints.secret"))
    previous_secret: Mapped[str | None] = mapped_column(
        EncryptedText("iln_endpoints.previous_secret")
    )
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class IlnDelivery(Base):
    """The outbox: one row per notification and endpoint, written with the change it reports."""

    __tablename__ = "iln_deliveries"
    __table_args__ = (
        Index("ix_iln_deliveries_due", "status", "next_attempt_at"),
        Index("ix_iln_deliveries_account_created", "account_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("iln_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    # The Standard Webhooks message id, the same on every retry.
    webhook_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    # Failures that followed the retry schedule (a receiver's Retry-After uses none), and the
    # end of the retry horizon, set at the first failure (and again after a redelivery).
    schedule_step: Mapped[int] = mapped_column(default=0, server_default="0")
    retry_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
