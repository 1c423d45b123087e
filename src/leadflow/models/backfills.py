from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, UTCDateTime

# A campaign has at most one backfill in progress at a time.
_UNFINISHED = text("status IN ('queued', 'running')")


class Backfill(Base):
    """Enrolling a campaign's earlier open leads, worked through by a worker in chunks of
    leads in capture order. Each chunk commits its enrollments together with the counts and the
    last lead id, so progress is visible and a backfill resumes where it stopped."""

    __tablename__ = "backfills"
    __table_args__ = (
        Index("ix_backfills_status_created", "status", "created_at"),
        Index("ix_backfills_campaign_created", "campaign_id", "created_at"),
        Index(
            "uq_backfills_campaign_unfinished",
            "campaign_id",
            unique=True,
            postgresql_where=_UNFINISHED,
            sqlite_where=_UNFINISHED,
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # queued, running, completed, stopped, failed
    captured_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The last lead examined, in (captured_at, id) order: the next chunk starts after it.
    after_captured_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    after_lead_id: Mapped[str | None] = mapped_column(String(40))
    scanned: Mapped[int] = mapped_column(default=0)
    enrolled: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
