from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, Money, UTCDateTime


class Event(Base):
    """Every accepted inbound webhook, append-only, with its raw body for audit and replay."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("account_id", "source", "external_id"),
        Index("ix_events_account_reference", "account_id", "type", "reference"),
        Index("ix_events_account_email", "account_id", "type", "email"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reference: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    amount: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    raw_body: Mapped[str] = mapped_column(Text)
    # The answer given to the first delivery, replayed for duplicates.
    result: Mapped[dict[str, Any]] = mapped_column(JSONType)
