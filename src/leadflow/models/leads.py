from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, Money, UTCDateTime


class Lead(Base):
    """One sales opportunity, unique per account, source type and external reference."""

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("account_id", "source_type", "reference"),
        Index("ix_leads_account_captured", "account_id", "captured_at", "id"),
        Index("ix_leads_account_status_source", "account_id", "status", "source_type"),
        Index("ix_leads_account_email", "account_id", "email"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(35))
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    products: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    recovery_url: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    captured_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # occurred_at of the newest event applied, so late deliveries never overwrite newer data.
    last_event_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LeadEvent(Base):
    """Which events made a lead what it is: captured it, updated it, converted it."""

    __tablename__ = "lead_events"

    lead_id: Mapped[str] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))


class LeadGroup(Base):
    """A built-in group of leads by source type, switchable on and off."""

    __tablename__ = "lead_groups"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Conversion(Base):
    """A purchase matched to a lead, credited to the last follow-up sent before it (if any)."""

    __tablename__ = "conversions"
    __table_args__ = (Index("ix_conversions_campaign", "campaign_id", "variant_id", "step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), unique=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    # Null when no follow-up was sent in the attribution window: not attributed.
    campaign_id: Mapped[str | None] = mapped_column(String(40))
    variant_id: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(40))
    step: Mapped[int | None]
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    converted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
