from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, Money, UTCDateTime


class StatsCounter(Base):
    """Hourly counters kept up to date in the transactions that send follow-ups and credit
    conversions, so dashboards never scan the messages table.

    ``currency`` is empty on rows that only count follow-ups; revenue rows carry their currency
    (amounts are never summed across currencies).
    """

    __tablename__ = "stats_counters"
    __table_args__ = (Index("ix_stats_counters_account_hour", "account_id", "hour"),)

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    followups_sent: Mapped[int] = mapped_column(default=0)
    # Leads whose first follow-up went out (each lead is targeted once).
    leads_targeted: Mapped[int] = mapped_column(default=0)
    conversions: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    # Follow-ups of the hour's row a provider reported as bounced (hard or soft) or
    # complained about, counted in the hour the follow-up was sent.
    bounces: Mapped[int] = mapped_column(default=0)
    complaints: Mapped[int] = mapped_column(default=0)
