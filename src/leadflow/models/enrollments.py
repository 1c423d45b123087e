from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, UTCDateTime


class Enrollment(Base):
    """A lead in one campaign variant. The worker's only query: active ones due now, in
    campaigns and lead groups that are not paused (``ix_enrollments_claim`` holds active
    enrollments alone, per campaign and source type, so paused and finished ones cost the
    claim nothing)."""

    __tablename__ = "enrollments"
    __table_args__ = (
        Index("ix_enrollments_due", "state", "next_due_at"),
        Index(
            "ix_enrollments_claim",
            "campaign_id",
            "source_type",
            "next_due_at",
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # A lead is enrolled in at most one campaign.
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), unique=True)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    # The lead's source type (it never changes), copied so that the claim skips a switched-off
    # lead group by index; null on rows whose writer did not set it (then read from the lead).
    source_type: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # active, completed, stopped
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    next_step: Mapped[int] = mapped_column(default=1)
    next_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Message(Base):
    """One follow-up, recorded before it is sent; (enrollment, step) makes a resend impossible."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step"),
        Index("ix_messages_account_recipient", "account_id", "to_email", "sent_at"),
        Index("ix_messages_campaign", "campaign_id", "variant_id", "step"),
        # The messages in flight alone (a handful): what a dead worker may have left behind.
        Index(
            "ix_messages_sending",
            "enrollment_id",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    step: Mapped[int]
    # sending -> sent | deferred (known not delivered, retried) | failed | unknown
    status: Mapped[str] = mapped_column(String(16))
    # When this attempt was about to hand the message itself to the server (SMTP DATA),
    # committed before DATA begins: a ``sending`` row without it whose worker died was never
    # handed over and is sent again; one with it may have been, so it becomes ``unknown``.
    data_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    message_id_header: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=1)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # What a provider reported after delivery: hard_bounce, soft_bounce or complaint (the
    # worst seen: a complaint or hard bounce is never replaced by a soft bounce).
    bounce: Mapped[str | None] = mapped_column(String(16))
    bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
