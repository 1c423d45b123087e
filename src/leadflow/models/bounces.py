from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, UTCDateTime


class MailOutcome(Base):
    """A bounce or complaint reported for one address (by an email service provider's
    webhook), stored once per provider event: the provider's event id is the idempotency
    key. Soft bounces are counted from these rows."""

    __tablename__ = "mail_outcomes"
    __table_args__ = (
        UniqueConstraint("account_id", "provider", "external_id"),
        Index("ix_mail_outcomes_recipient", "account_id", "email", "kind", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))  # postmark, sendgrid, mailgun, ses
    external_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # hard_bounce, soft_bounce, complaint
    email: Mapped[str] = mapped_column(String(320))
    # The follow-up it was matched to, if any (provider message id, Message-ID, recipient).
    message_id: Mapped[str | None] = mapped_column(String(40))
    lead_id: Mapped[str | None] = mapped_column(String(40))
    # Whether this outcome suppressed the address (hard bounce, complaint, Nth soft bounce).
    suppressed: Mapped[bool] = mapped_column(default=False)
    diagnostic: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
