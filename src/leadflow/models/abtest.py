from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, Money, UTCDateTime


class AbTest(Base):
    """A campaign's A/B test settings and outcome; the outcome is written once."""

    __tablename__ = "ab_tests"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    criterion: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[Decimal | None] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    keep_best: Mapped[bool] = mapped_column(Boolean, default=False)
    continue_variant_id: Mapped[str | None] = mapped_column(String(40))
    min_confidence: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))  # running, decided, inconclusive
    winner_variant_id: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AbTestCounter(Base):
    """Per-variant totals of a campaign's split, kept in the transactions that assign leads
    and record first checkout visits, so results read a few rows per variant however many
    leads the campaign has. Follow-ups, conversions and revenue come from the hourly stats counters.
    """

    __tablename__ = "ab_test_counters"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[str] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    # Each transaction adds to one of a few rows per variant (see abtest/counters.py).
    shard: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    leads_assigned: Mapped[int] = mapped_column(default=0)
    # Leads that reached the checkout through a tracked link (one visit per lead and variant).
    visitors: Mapped[int] = mapped_column(default=0)
