from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, UTCDateTime


class Suppression(Base):
    """An address that must never receive another follow-up from this account."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))  # unsubscribed, manual, bounced, complaint
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Visit(Base):
    """A lead reaching the checkout through a tracked link; unique per lead and variant."""

    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("lead_id", "variant_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    step: Mapped[int]
    clicks: Mapped[int] = mapped_column(default=1)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
