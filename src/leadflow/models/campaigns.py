from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, JSONType, UTCDateTime
from leadflow.vocabulary import CampaignStatus


# The SQL forms of Campaign.is_running and Campaign.is_finished (see there).
def _running_sql(cls: type[Campaign], now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        cls.status == CampaignStatus.ACTIVE.value,
        cls.archived_at.is_(None),
        or_(cls.starts_at.is_(None), cls.starts_at <= now),
        or_(cls.ends_at.is_(None), cls.ends_at > now),
    )


def _finished_sql(cls: type[Campaign], now: dt.datetime) -> ColumnElement[bool]:
    return or_(cls.archived_at.is_not(None), and_(cls.ends_at.is_not(None), cls.ends_at <= now))


class Campaign(Base):
    """A lead group with filters and follow-ups: the unit merchants switch on and off."""

    __tablename__ = "campaigns"
    __table_args__ = (
        # Names are unique among live campaigns, whatever their case; archived ones keep
        # theirs for history.
        Index(
            "uq_campaigns_account_live_lower_name",
            "account_id",
            func.lower(text("name")),
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index("ix_campaigns_account_status", "account_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    products: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    countries: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    priority: Mapped[int] = mapped_column(default=0)
    # {"start": "09:00", "end": "20:00"} in the lead's local time, or null.
    send_window: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    # The rules "the campaign runs" and "it has finished for good" (its enrollments stop; a
    # paused campaign's only wait), each on a loaded campaign and as SQL, side by side.
    def _is_running(self, now: dt.datetime) -> bool:
        return (
            self.status == CampaignStatus.ACTIVE
            and self.archived_at is None
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or self.ends_at > now)
        )

    def _is_finished(self, now: dt.datetime) -> bool:
        return self.archived_at is not None or (self.ends_at is not None and self.ends_at <= now)

    is_running = hybrid_method(_is_running, _running_sql)
    is_finished = hybrid_method(_is_finished, _finished_sql)


class Variant(Base):
    """One set of 1-3 follow-up steps. Several live variants make an A/B test."""

    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    weight: Mapped[int] = mapped_column(default=1)
    # [{"delay_seconds", "template" or "subject"/"html"/"text", "discount_code"}]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    @classmethod
    def live_of(cls, campaign_id: str) -> Select[Variant]:
        """A campaign's live variants, oldest first (the order results and A/B tests use)."""
        return (
            select(cls)
            .where(cls.campaign_id == campaign_id, cls.archived_at.is_(None))
            .order_by(cls.created_at, cls.id)
        )
