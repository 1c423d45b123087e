"""Request dependencies: settings, clock, the unit of work, the calling account."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import account_for_api_key
from leadflow.config import Settings
from leadflow.ingest.coalesce import EventQueue
from leadflow.ingest.intake import AccountCache
from leadflow.kit import logs
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.kit.errors import AppError
from leadflow.models.accounts import Account
from leadflow.notifications.delivery import Notifier

_bearer = HTTPBearer(auto_error=False, description="The account's API key (`lf_…`).")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="`LEADFLOW_ADMIN_TOKEN`."
)


# Dependencies are coroutines even where they do not await: FastAPI runs a plain function
# in its thread pool, a thread hop per dependency per request.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_database(request: Request) -> Database:
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


async def get_notifier(request: Request) -> Notifier:
    """The API process's notifier (it sends pings): built on first use, closed at shutdown."""
    state = request.app.state
    if getattr(state, "notifier", None) is None:
        state.notifier = Notifier(state.settings, state.db, state.clock)
    notifier: Notifier = state.notifier
    return notifier


async def get_event_queue(request: Request) -> EventQueue:
    """The API process's group commit of single events: built on first use, drained at
    shutdown."""
    state = request.app.state
    if getattr(state, "event_queue", None) is None:
        window = dt.timedelta(days=state.settings.attribution_days)
        state.event_queue = EventQueue(state.db, window)
    queue: EventQueue = state.event_queue
    return queue


async def get_account_cache(request: Request) -> AccountCache:
    """The API process's accounts for webhook intake (kept a moment, forgotten when changed
    through this API)."""
    state = request.app.state
    if getattr(state, "account_cache", None) is None:
        ttl = state.settings.webhook_account_cache_seconds
        state.account_cache = AccountCache(state.db, ttl)
    cache: AccountCache = state.account_cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": the commit happens before the response is sent, so a failed
# commit is reported to the caller instead of being lost after a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
EventQueueDep = Annotated[EventQueue, Depends(get_event_queue)]
AccountCacheDep = Annotated[AccountCache, Depends(get_account_cache)]


def _unauthorized(detail: str) -> AppError:
    return AppError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def current_account(
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    """The account of an active API key (its last use is recorded, to the minute)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    account = await account_for_api_key(session, credentials.credentials, clock.now())
    if account is None:
        raise _unauthorized("Unknown or revoked API key.")
    logs.bind(account_id=account.id)  # on the request's log lines from here on
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    # An empty token (``LEADFLOW_ADMIN_TOKEN=``) disables the admin API rather than
    # letting a request without credentials match it.
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise _unauthorized("The admin API is disabled: set LEADFLOW_ADMIN_TOKEN to enable it.")
    expected = settings.admin_token.get_secret_value().encode()
    offered = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(expected, offered):
        raise _unauthorized("Invalid admin token.")
