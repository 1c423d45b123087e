"""Dashboard sign-in: browser sessions, single-use login links and the first-run setup link.

A browser signs in with an API key, a login link (``leadflow accounts login-link``) or, on a
database without any account, the setup link ``leadflow serve`` prints. It then holds a
random session token in an HttpOnly cookie, never the API key. Only SHA-256 hashes of the
session and link tokens are stored: they are 256-bit random values, so a plain hash is a safe
lookup key (as for API keys), and a copy of the tables signs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import NewAccount, account_for_api_key, create_account
from leadflow.kit.errors import DomainError
from leadflow.kit.ids import new_id
from leadflow.models.accounts import Account
from leadflow.models.sessions import DashboardSession, LinkPurpose, LoginLink

# Prefixes make a leaked token recognizable (and kit/logs.py scrubs both shapes).
SESSION_TOKEN_PREFIX = "lfs_"  # noqa: S105 - a prefix, not a secret
LINK_TOKEN_PREFIX = "lfl_"  # noqa: S105
LOGIN_LINK_LIFETIME = dt.timedelta(minutes=15)
SETUP_LINK_LIFETIME = dt.timedelta(hours=24)
# A session's last use is recorded to the minute: one write per session and minute at most.
LAST_SEEN_PRECISION = dt.timedelta(minutes=1)
# Ended sessions and used or expired links are kept this long (an old cookie is answered
# "expired" or "signed out" rather than "unknown"), then deleted at the account's next sign-in.
KEEP_ENDED = dt.timedelta(days=1)
USER_AGENT_CHARS = 200


class InvalidCredentials(DomainError):
    http_status = 401
    problem_code = "invalid_credentials"
    default_detail = "Unknown or revoked API key, or a login link that is used or expired."


class SessionInvalid(DomainError):
    http_status = 401
    problem_code = "unauthorized"
    default_detail = "Not signed in: sign in again."


class SessionExpired(DomainError):
    http_status = 401
    problem_code = "session_expired"
    default_detail = "The session has expired: sign in again."


class SetupDone(DomainError):
    http_status = 409
    problem_code = "setup_done"
    default_detail = (
        "leadflow already has an account: sign in with an API key or a login link "
        "(`leadflow accounts login-link ACCOUNT`)."
    )


class NoSuchAccount(DomainError):
    http_status = 404
    problem_code = "not_found"
    default_detail = "No account has this id or name (`leadflow accounts list` lists them)."


class AmbiguousAccount(DomainError):
    http_status = 409
    problem_code = "ambiguous_account"
    default_detail = "Several accounts have this name: give the account's id."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(expected: str, offered: str | None) -> bool:
    """Constant time, whatever ``offered`` is."""
    return hmac.compare_digest(expected.encode(), (offered or "").encode())


@dataclass(frozen=True)
class OpenedSession:
    """The only moment the session token exists in clear (it goes into the cookie)."""

    session: DashboardSession
    account: Account
    token: str


@dataclass(frozen=True)
class SetupCompleted:
    opened: OpenedSession
    created: NewAccount


async def _open(
    session: AsyncSession,
    account: Account,
    now: dt.datetime,
    lifetime: dt.timedelta,
    user_agent: str | None,
) -> OpenedSession:
    await _forget_ended(session, account.id, now)
    token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = DashboardSession(
        id=new_id("ses"),
        account_id=account.id,
        token_hash=hash_token(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        revoked_at=None,
        user_agent=user_agent[:USER_AGENT_CHARS] if user_agent else None,
    )
    session.add(row)
    await session.flush()
    return OpenedSession(session=row, account=account, token=token)


async def _forget_ended(session: AsyncSession, account_id: str, now: dt.datetime) -> None:
    cutoff = now - KEEP_ENDED
    await session.execute(
        delete(DashboardSession)
        .where(
            DashboardSession.account_id == account_id,
            or_(DashboardSession.expires_at < cutoff, DashboardSession.revoked_at < cutoff),
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(LoginLink)
        .where(
            LoginLink.account_id == account_id,
            or_(LoginLink.expires_at < cutoff, LoginLink.used_at < cutoff),
        )
        .execution_options(synchronize_session=False)
    )


async def open_session_with_api_key(
    session: AsyncSession,
    api_key: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
    user_agent: str | None = None,
) -> OpenedSession:
    account = await account_for_api_key(session, api_key, now)
    if account is None:
        raise InvalidCredentials()
    return await _open(session, account, now, lifetime, user_agent)


async def _use_link(
    session: AsyncSession, token: str, purpose: LinkPurpose, now: dt.datetime
) -> str | None:
    """Marks the link used, if it is unused and unexpired, and answers its account (None for
    a setup link). Conditional, so of two requests with the same link only one succeeds (on
    PostgreSQL the second waits for the first's commit, then finds the link used)."""
    row = (
        await session.execute(
            update(LoginLink)
            .where(
                LoginLink.token_hash == hash_token(token),
                LoginLink.purpose == purpose.value,
                LoginLink.used_at.is_(None),
                LoginLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(LoginLink.account_id)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        raise InvalidCredentials()
    account_id: str | None = row[0]
    return account_id


async def open_session_with_login_token(
    session: AsyncSession,
    token: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
    user_agent: str | None = None,
) -> OpenedSession:
    account_id = await _use_link(session, token, LinkPurpose.LOGIN, now)
    account = await session.get(Account, account_id) if account_id else None
    if account is None:
        raise InvalidCredentials()
    return await _open(session, account, now, lifetime, user_agent)


async def has_accounts(session: AsyncSession) -> bool:
    return await session.scalar(select(Account.id).limit(1)) is not None


async def complete_setup(
    session: AsyncSession,
    token: str,
    account_name: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
    user_agent: str | None = None,
) -> SetupCompleted:
    """The first account, made with the setup link printed at start, and a session in it."""
    if await has_accounts(session):
        raise SetupDone()
    await _use_link(session, token, LinkPurpose.SETUP, now)
    created = await create_account(session, account_name, now)
    opened = await _open(session, created.account, now, lifetime, user_agent)
    return SetupCompleted(opened=opened, created=created)


async def session_for_token(
    session: AsyncSession, token: str, now: dt.datetime
) -> tuple[DashboardSession, Account]:
    """The live session a cookie holds, with its account; records its use (to the minute)."""
    row = (
        await session.execute(
            select(DashboardSession, Account)
            .join(Account, Account.id == DashboardSession.account_id)
            .where(DashboardSession.token_hash == hash_token(token))
        )
    ).one_or_none()
    if row is None:
        raise SessionInvalid()
    found, account = row
    if found.revoked_at is not None:
        raise SessionInvalid("This session was signed out: sign in again.")
    if found.expires_at <= now:
        raise SessionExpired()
    cutoff = now - LAST_SEEN_PRECISION
    if found.last_seen_at <= cutoff:
        await session.execute(
            update(DashboardSession)
            .where(DashboardSession.id == found.id, DashboardSession.last_seen_at <= cutoff)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    return found, account


async def revoke_session(session: AsyncSession, session_id: str, now: dt.datetime) -> None:
    """Signs the session out: its cookie answers 401 from now on, wherever it was copied."""
    await session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == session_id, DashboardSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def _new_link(
    session: AsyncSession,
    account_id: str | None,
    purpose: LinkPurpose,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> str:
    token = LINK_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        LoginLink(
            id=new_id("lnk"),
            account_id=account_id,
            token_hash=hash_token(token),
            purpose=purpose.value,
            created_at=now,
            expires_at=now + lifetime,
            used_at=None,
        )
    )
    return token


async def create_login_link(session: AsyncSession, account_id: str, now: dt.datetime) -> str:
    """A login link's token (single use, for ``LOGIN_LINK_LIFETIME``)."""
    token = _new_link(session, account_id, LinkPurpose.LOGIN, now, LOGIN_LINK_LIFETIME)
    await session.flush()
    return token


async def create_setup_link(session: AsyncSession, now: dt.datetime) -> str | None:
    """On a database without any account: a new setup link's token (single use, for
    ``SETUP_LINK_LIFETIME``), replacing any earlier one. None once an account exists."""
    await session.execute(
        delete(LoginLink)
        .where(LoginLink.purpose == LinkPurpose.SETUP.value)
        .execution_options(synchronize_session=False)
    )
    if await has_accounts(session):
        await session.flush()
        return None
    token = _new_link(session, None, LinkPurpose.SETUP, now, SETUP_LINK_LIFETIME)
    await session.flush()
    return token


async def find_account(session: AsyncSession, id_or_name: str) -> Account:
    """The account with this id, else the one with exactly this name (several: refused)."""
    account = await session.get(Account, id_or_name)
    if account is not None:
        return account
    named = list(
        (await session.scalars(select(Account).where(Account.name == id_or_name).limit(2))).all()
    )
    if len(named) > 1:
        raise AmbiguousAccount()
    if not named:
        raise NoSuchAccount()
    return named[0]
