"""Opt-in capture: the proof of each sign-up's consent, and its double opt-in state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, UTCDateTime


class CaptureConsent(Base):
    """One sign-up through a capture form: who agreed to what, when, from where. Kept as
    the proof of consent; with double opt-in it also holds the sign-up until confirmed (the
    lead is created only then)."""

    __tablename__ = "capture_consents"
    __table_args__ = (Index("ix_capture_consents_account_email", "account_id", "email"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    # ``confirmed`` (single opt-in, or confirmed by the link), ``pending`` or ``expired``.
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    page_url: Mapped[str | None] = mapped_column(Text)
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_version: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(35))
    # What the form said about the person (names, country), applied to the lead.
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    lead_id: Mapped[str | None] = mapped_column(String(40))
    confirmation_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
