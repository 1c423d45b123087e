"""Links in emails (no login: signed tokens) and the merchant's suppression list."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.kit.errors import error_responses
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.lifecycle import tracking
from leadflow.lifecycle.schemas import SuppressionIn, SuppressionOut

router = APIRouter()
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


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
    responses={404: {**error_responses(404)[404], "description": "Invalid link"}},
)
async def unsubscribe_page(token: str, session: SessionDep) -> HTMLResponse:
    """Shows a confirmation button. GET never unsubscribes: mail scanners follow links."""
    target = await tracking.unsubscription(session, token)
    return _page(
        "Unsubscribe",
        f"<h1>Unsubscribe</h1><p>Stop emails from {html.escape(target.merchant)} to "
        f"<strong>{html.escape(target.email)}</strong>?</p>"
        f"<form method='post'><button type='submit'>Unsubscribe</button></form>",
    )


@router.post(
    "/u/{token}",
    tags=["links"],
    summary="Unsubscribe (RFC 8058 one-click)",
    response_class=HTMLResponse,
    responses={404: {**error_responses(404)[404], "description": "Invalid link"}},
)
async def unsubscribe(token: str, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    """Mailbox providers POST `List-Unsubscribe=One-Click` here; the page's button does too."""
    done = await tracking.unsubscribe(session, token, clock.now())
    return _page(
        "Unsubscribed",
        f"<h1>You are unsubscribed</h1><p>{html.escape(done.email)} will not receive "
        f"further emails from {html.escape(done.merchant)}.</p>",
    )


@router.get(
    "/c/{token}",
    tags=["links"],
    summary="Tracked link to the lead's checkout",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "Redirect to the lead's recovery URL"},
        404: {**error_responses(404)[404], "description": "Invalid link"},
    },
)
async def click(token: str, session: SessionDep, clock: ClockDep) -> Response:
    """Records the visit, then redirects only to the URL stored on the lead (no open redirect)."""
    url = await tracking.click(session, token, clock.now())
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


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
    return await tracking.list_suppressions(session, account.id, email, limit, cursor)


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
    return await tracking.add_suppression(session, account.id, body, clock.now())


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
    await tracking.remove_suppression(session, account.id, email)
    return Response(status_code=204)
