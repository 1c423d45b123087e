"""Signing in to the dashboard: the session cookie, and the first run's setup."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.accounts.schemas import NotBlank
from leadflow.accounts.sessions import (
    OpenedSession,
    complete_setup,
    open_session_with_api_key,
    open_session_with_login_token,
    revoke_session,
)
from leadflow.api.deps import (
    SESSION_COOKIE,
    ClockDep,
    CurrentDashboardSession,
    SessionDep,
    SettingsDep,
)
from leadflow.config import Settings
from leadflow.kit.errors import error_responses
from leadflow.models.accounts import Account
from leadflow.models.sessions import DashboardSession

router = APIRouter(tags=["session"])

Token = Annotated[str, Field(min_length=1, max_length=200)]


class SessionCreate(BaseModel):
    """Exactly one of the two."""

    model_config = ConfigDict(extra="forbid")
    api_key: Token | None = Field(default=None, description="An API key of the account.")
    login_token: Token | None = Field(
        default=None,
        description="The token of a login link (`leadflow accounts login-link ACCOUNT`).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.api_key is None) == (self.login_token is None):
            raise ValueError("give exactly one of api_key and login_token")
        return self


class SessionOut(BaseModel):
    account_id: str
    account_name: str
    csrf_token: str = Field(
        description="Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE."
    )
    expires_at: dt.datetime


class SetupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Token = Field(description="The token of the setup link printed at the first start.")
    account_name: Annotated[
        str, Field(min_length=1, max_length=200, examples=["Acme Shop"]), NotBlank
    ]


class SetupOut(SessionOut):
    """Returned once: neither the API key nor the webhook secret is shown again."""

    api_key: str = Field(description="Bearer key for the merchant API. Only its hash is stored.")
    webhook_secret: str = Field(description="`whsec_…` secret that signs inbound webhooks.")


def _view(signed_in: DashboardSession, account: Account) -> SessionOut:
    return SessionOut(
        account_id=account.id,
        account_name=account.name,
        csrf_token=signed_in.csrf_token,
        expires_at=signed_in.expires_at,
    )


def _secure(request: Request, settings: Settings) -> bool:
    """Secure over https: the request's own scheme (uvicorn applies trusted proxy headers),
    a proxy's X-Forwarded-Proto (Secure only ever narrows where the cookie goes), or an
    https base URL."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return (
        request.url.scheme == "https"
        or forwarded == "https"
        or settings.base_url.lower().startswith("https://")
    )


def _set_cookie(
    response: Response, request: Request, settings: Settings, opened: OpenedSession
) -> None:
    lifetime = opened.session.expires_at - opened.session.created_at
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=int(lifetime.total_seconds()),
        path="/",
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


@router.post(
    "/v1/session",
    summary="Sign in to the dashboard",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    responses=error_responses(401, 422),
)
async def create_session_route(
    body: SessionCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SessionOut:
    """Opens a session with an API key or a login link's token: the answer sets the
    HttpOnly `lf_session` cookie and gives the CSRF token. Bad credentials:
    `invalid_credentials`."""
    agent = request.headers.get("user-agent")
    if body.api_key is not None:
        opened = await open_session_with_api_key(
            session, body.api_key, clock.now(), settings.session_lifetime, agent
        )
    else:
        assert body.login_token is not None  # the model takes exactly one
        opened = await open_session_with_login_token(
            session, body.login_token, clock.now(), settings.session_lifetime, agent
        )
    _set_cookie(response, request, settings, opened)
    return _view(opened.session, opened.account)


@router.get(
    "/v1/session",
    summary="Read the dashboard session",
    response_model=SessionOut,
    responses=error_responses(401),
)
async def get_session_route(signed_in: CurrentDashboardSession) -> SessionOut:
    """The session of the cookie (`session_expired` once it has expired)."""
    return _view(*signed_in)


@router.delete(
    "/v1/session",
    summary="Sign out of the dashboard",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401),
)
async def delete_session_route(
    signed_in: CurrentDashboardSession,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> None:
    """Revokes the session (its cookie stops working everywhere) and clears the cookie."""
    await revoke_session(session, signed_in[0].id, clock.now())
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


@router.post(
    "/v1/setup",
    summary="Create the first account (first run)",
    status_code=status.HTTP_201_CREATED,
    response_model=SetupOut,
    responses=error_responses(401, 409, 422),
)
async def complete_setup_route(
    body: SetupIn,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SetupOut:
    """With the single-use setup link `leadflow serve` prints on a database without any
    account: creates the account and signs in to it. Once an account exists: `setup_done`
    (409); a used, replaced or expired token: `invalid_credentials` (401)."""
    done = await complete_setup(
        session,
        body.token,
        body.account_name,
        clock.now(),
        settings.session_lifetime,
        request.headers.get("user-agent"),
    )
    _set_cookie(response, request, settings, done.opened)
    view = _view(done.opened.session, done.opened.account)
    return SetupOut(
        **view.model_dump(),
        api_key=done.created.api_key,
        webhook_secret=done.created.account.webhook_secret,
    )
