"""Links in emails (no login: signed tokens) and the merchant's suppression list."""

from __future__ import annotations

import datetime as dt
import html
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.dispatch.models import Message
from leadflow.kit.errors import AppError, error_responses, not_found
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, keyset_page
from leadflow.leads.models import Lead
from leadflow.tracking.models import Suppression
from leadflow.tracking.service import record_visit, suppress
from leadflow.tracking.tokens import CLICK, UNSUBSCRIBE, read_token, verify_token

router = APIRouter()
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def _verified(session: AsyncSession, token: str, kind: str) -> tuple[Account, str]:
    claims = read_token(token)
    account = await session.get(Account, claims.account_id) if claims else None
    if claims is None or account is None or not verify_token(account.link_secret, kind, token):
        raise AppError(404, "not_found", "This link is not valid.")
    return account, claims.subject_id


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem'>"
        f"{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=_NO_STORE)


@router.get(
    "/u/{token}",
    tags=["links"],
    summary="Unsubscribe page",
    response_class=HTMLResponse,
    responses={404: {"description": "Invalid link"}},
)
async def unsubscribe_page(token: str, session: SessionDep) -> HTMLResponse:
    """Shows a confirmation button. GET never unsubscribes: mail scanners follow links."""
    account, lead_id = await _verified(session, token, UNSUBSCRIBE)
    lead = await session.get(Lead, lead_id)
    if lead is None or lead.account_id != account.id:
        raise not_found("link")
    merchant = html.escape(account.sender_name or account.name)
    return _page(
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>Stop emails from {merchant} to "
        f"<strong>{html.escape(lead.email)}</strong>?</p>"
        f"<form method='post'><button type='submit'>Unsubscribe</button></form>",
    )


@router.post(
    "/u/{token}",
    tags=["links"],
    summary="Unsubscribe (RFC 8058 one-click)",
    response_class=HTMLResponse,
    responses={404: {"description": "Invalid link"}},
)
async def unsubscribe(token: str, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    """Mailbox providers POST `List-Unsubscribe=One-Click` here; the page's button does too."""
    account, lead_id = await _verified(session, token, UNSUBSCRIBE)
    lead = await session.get(Lead, lead_id)
    if lead is None or lead.account_id != account.id:
        raise not_found("link")
    await suppress(session, account.id, lead.email, "unsubscribed", clock.now())
    return _page(
        "Unsubscribed",
        f"<h1>You are unsubscribed</h1><p>{html.escape(lead.email)} will not receive "
        f"further emails from {html.escape(account.sender_name or account.name)}.</p>",
    )


@router.get(
    "/c/{token}",
    tags=["links"],
    summary="Tracked link to the lead's checkout",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "Redirect to the lead's recovery URL"},
        404: {"description": "Invalid link"},
    },
)
async def click(token: str, session: SessionDep, clock: ClockDep) -> Response:
    """Records the visit, then redirects only to the URL stored on the lead (no open redirect)."""
    account, message_id = await _verified(session, token, CLICK)
    message = await session.get(Message, message_id)
    if message is None or message.account_id != account.id:
        raise not_found("link")
    lead = await session.get_one(Lead, message.lead_id)
    if not lead.recovery_url:
        raise not_found("checkout link")
    await record_visit(session, message, clock.now())
    return RedirectResponse(lead.recovery_url, status_code=302, headers=_NO_STORE)


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    reason: str = Field(default="manual", pattern=r"^(manual|bounced|complaint|unsubscribed)$")


class SuppressionOut(BaseModel):
    id: str
    email: str
    reason: str
    created_at: dt.datetime


def _view(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        id=row.id,
        email=row.email,
        reason=row.reason,
        created_at=row.created_at,
    )


@router.get(
    "/v1/suppressions",
    tags=["suppressions"],
    summary="List suppressed addresses",
    response_model=Page[SuppressionOut],
    responses=error_responses(401, 422),
)
async def list_suppressions(
    account: CurrentAccount,
    session: SessionDep,
    email: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[SuppressionOut]:
    stmt = select(Suppression).where(Suppression.account_id == account.id)
    if email:
        stmt = stmt.where(Suppression.email == email.lower())
    rows, next_cursor = await keyset_page(
        session, stmt, (Suppression.id,), limit=limit, cursor=cursor
    )
    return Page[SuppressionOut](items=[_view(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/v1/suppressions",
    tags=["suppressions"],
    summary="Suppress an address",
    status_code=status.HTTP_201_CREATED,
    response_model=SuppressionOut,
    responses=error_responses(401, 422),
)
async def add_suppression(
    body: SuppressionIn, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> SuppressionOut:
    """Idempotent: suppressing an address twice keeps the first entry. Stops its follow-ups."""
    row = await suppress(session, account.id, str(body.email), body.reason, clock.now())
    return _view(row)


@router.delete(
    "/v1/suppressions/{email}",
    tags=["suppressions"],
    summary="Remove an address from the suppression list",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404),
)
async def remove_suppression(email: str, account: CurrentAccount, session: SessionDep) -> Response:
    """Future leads of the address get follow-ups again; stopped sequences stay stopped."""
    result = await session.execute(
        delete(Suppression)
        .where(Suppression.account_id == account.id, Suppression.email == email.lower())
        .returning(Suppression.id)
    )
    if result.scalar_one_or_none() is None:
        raise not_found("suppression")
    return Response(status_code=204)
