from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.kit.db import Base, UTCDateTime


class LinkPurpose(StrEnum):
    LOGIN = "login"  # signs in to an existing account
    SETUP = "setup"  # creates the first account (first run), then signs in to it


class DashboardSession(Base):
    """A browser's sign-in to the dashboard. The cookie holds a random token; only its
    SHA-256 hash is stored (a copy of the table signs nobody in)."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sent back in X-CSRF-Token on state-changing requests: a page of another site can make
    # the browser send the cookie, but cannot read this token.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Updated at most once a minute (accounts.sessions.LAST_SEEN_PRECISION).
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    user_agent: Mapped[str | None] = mapped_column(String(200))


class LoginLink(Base):
    """A single-use, short-lived link that opens a dashboard session (only the hash of its
    token is stored). A setup link has no account: it creates the first one."""

    __tablename__ = "login_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
