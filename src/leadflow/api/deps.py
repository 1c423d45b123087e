"""Request dependencies: settings, clock, the unit of work, the calling account."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import account_for_api_key
from leadflow.accounts.sessions import session_for_token, tokens_match
from leadflow.config import Settings
from leadflow.ingest.coalesce import EventQueue
from leadflow.ingest.intake import AccountCache
from leadflow.kit import logs
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.kit.errors import AppError, FieldProblem, validation_problem
from leadflow.models.accounts import Account
from leadflow.models.sessions import DashboardSession
from leadflow.notifications.delivery import Notifier

_bearer = HTTPBearer(auto_error=False, description="The account's API key (`lf_…`).")
SESSION_COOKIE = "lf_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="SessionCookie",
    description="The dashboard's session (`POST /v1/session`). POST, PUT, PATCH and DELETE "
    f"with it also need the `{CSRF_HEADER}` header the session answered; a request with an "
    "`Authorization` header is judged by that header alone.",
)
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


async def _signed_in(
    request: Request, session: AsyncSession, clock: Clock, token: str
) -> tuple[DashboardSession, Account]:
    """The session a cookie holds; a state-changing request must also carry its CSRF token
    (another site can make the browser send the cookie, but cannot read the token)."""
    try:
        signed_in, account = await session_for_token(session, token, clock.now())
    except AppError as exc:
        exc.headers = {"WWW-Authenticate": "Bearer"}
        raise
    if request.method not in SAFE_METHODS and not tokens_match(
        signed_in.csrf_token, request.headers.get(CSRF_HEADER)
    ):
        raise AppError(
            403,
            "csrf_failed",
            f"A request signed in by the session cookie that changes something needs the "
            f"'{CSRF_HEADER}' header the session answered.",
        )
    logs.bind(account_id=account.id)  # on the request's log lines from here on
    return signed_in, account


_DECLARED_QUERY: dict[int, frozenset[str]] = {}


def _declared_query(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared_query(sub)
    return names


def _refuse_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 naming it, not silently ignored: a
    misspelt filter (``?stauts=open``) would otherwise answer every row as if it applied."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    declared = _DECLARED_QUERY.get(id(route))
    if declared is None:
        declared = _DECLARED_QUERY[id(route)] = frozenset(_declared_query(dependant))
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise validation_problem(
            [FieldProblem(field=name, message="unknown query parameter") for name in unknown]
        )


async def current_account(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_session_cookie)],
) -> Account:
    """The account of an active API key (its last use is recorded, to the minute), or of the
    dashboard session in the ``lf_session`` cookie. A request with an Authorization header is
    judged by it alone: a cookie the browser also sends changes nothing for it."""
    if cookie and "authorization" not in request.headers:
        account = (await _signed_in(request, session, clock, cookie))[1]
    else:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
        found = await account_for_api_key(session, credentials.credentials, clock.now())
        if found is None:
            raise _unauthorized("Unknown or revoked API key.")
        account = found
        logs.bind(account_id=account.id)  # on the request's log lines from here on
    _refuse_unknown_query(request)  # once the caller is known: a stranger learns nothing
    return account


async def current_dashboard_session(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    cookie: Annotated[str | None, Depends(_session_cookie)],
) -> tuple[DashboardSession, Account]:
    """The dashboard session of the ``lf_session`` cookie (no API key stands for one)."""
    if not cookie:
        raise _unauthorized("Not signed in: no session cookie.")
    return await _signed_in(request, session, clock, cookie)


CurrentAccount = Annotated[Account, Depends(current_account)]
CurrentDashboardSession = Annotated[
    tuple[DashboardSession, Account], Depends(current_dashboard_session)
]


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
