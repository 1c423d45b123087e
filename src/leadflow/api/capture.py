"""Opt-in capture forms: the public, browser-postable ``POST /v1/capture/{public_key}``
(JSON or a plain HTML form), its CORS preflight, the embeddable ``form.js``, the double
opt-in confirmation link, and the merchant's capture settings."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from leadflow.accounts.capture import (
    CaptureSettings,
    CaptureSettingsUpdate,
    account_for_publishable_key,
    capture_settings_of,
    change_capture_settings,
    rotate_publishable_key,
)
from leadflow.api.capture_form import FORM_JS
from leadflow.api.capture_limits import CaptureLimits, too_many
from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep, SettingsDep
from leadflow.ingest.capture import Proof, SignUp, capture_signup, confirm_signup
from leadflow.ingest.schemas import Customer
from leadflow.kit.errors import AppError, error_responses, field_error, not_found, validation_error
from leadflow.models.accounts import Account
from leadflow.templates.optin import confirmation_page, received_page

router = APIRouter(tags=["capture"])

HONEYPOT = "website"
MAX_FORM_BYTES = 16 * 1024
_YES = {"true", "on", "1", "yes"}
_NO_STORE = {"Cache-Control": "no-store"}


TOO_MANY_DOC = {
    **error_responses(422)[422],
    "description": "Too many sign-ups from this IP address or into this account; retry after "
    "`Retry-After` seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
}


# As the unsubscribe link's (api/links.py): the person who opened it gets an HTML page.
INVALID_LINK_DOC = {
    "description": "Invalid or expired link: an HTML page in the lead's language (a Problem "
    "when the link cannot even be read)",
    "content": {
        "text/html": {"schema": {"type": "string"}},
        **error_responses(404)[404]["content"],
    },
}


class CaptureIn(BaseModel):
    """A sign-up. A form sends the same names as fields; `consent` is then `on` (a checked
    checkbox), `true`, `yes` or `1`."""

    model_config = ConfigDict(extra="ignore")
    email: EmailStr = Field(examples=["jane@example.com"])
    consent: bool = Field(description="Must be true: the person agreed to be emailed.")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, description="BCP 47; else the browser's.")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2.")
    page_url: str | None = Field(
        default=None, max_length=2048, description="The page of the form; else the Referer."
    )
    consent_text: str | None = Field(
        default=None, max_length=2000, description="The wording agreed to; else the account's."
    )
    consent_version: str | None = Field(default=None, max_length=100)
    website: str | None = Field(
        default=None, description="Honeypot: leave it empty (hidden from people)."
    )


class CaptureAccepted(BaseModel):
    status: str = Field(
        description="Always `received`: the answer is the same for a new address, a known "
        "one, and a sign-up waiting for its double opt-in confirmation.",
        examples=["received"],
    )


def _limits(request: Request) -> CaptureLimits:
    state = request.app.state
    if getattr(state, "capture_limits", None) is None:
        settings = state.settings
        state.capture_limits = CaptureLimits(
            settings.capture_per_ip_per_minute, settings.capture_per_account_per_minute
        )
    limits: CaptureLimits = state.capture_limits
    return limits


def _cors(account: Account | None, request: Request) -> dict[str, str]:
    """CORS headers for an origin the account allows; none for any other."""
    origin = request.headers.get("origin")
    if account is None or not origin:
        return {}
    if origin.lower().rstrip("/") not in capture_settings_of(account).allowed_origins:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def _fields(request: Request) -> tuple[dict[str, Any], bool]:
    """The submitted fields, and whether they came from a form (not JSON)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise AppError(413, "payload_too_large", f"At most {MAX_FORM_BYTES} bytes.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), True
    if kind == "multipart/form-data":
        # An HTML form sends urlencoded unless told otherwise; a sign-up has no file to send.
        raise AppError(
            415,
            "unsupported_media_type",
            "Send the form as application/x-www-form-urlencoded (the default of an HTML "
            "form) or JSON.",
        )
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise AppError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise AppError(422, "validation_error", "The body must be a JSON object.")
    return data, False


def _parse(data: dict[str, Any], headers: dict[str, str]) -> CaptureIn:
    # As RefuseNul does for JSON bodies: a form field with NUL can never be stored.
    for name, value in data.items():
        if isinstance(value, str) and "\x00" in name + value:
            error = field_error(name.replace("\x00", ""), "must not contain NUL characters")
            error.headers = headers
            raise error
    if isinstance(data.get("consent"), str):
        data["consent"] = data["consent"].strip().lower() in _YES
    if "consent" not in data or data["consent"] in ("", None):
        data["consent"] = False
    try:
        signup = CaptureIn.model_validate(data)
        Customer(email=signup.email, language=signup.language, country=signup.country)
    except ValidationError as exc:
        error = validation_error(exc)
        error.headers = headers
        raise error from None
    if signup.consent is not True:
        error = field_error("consent", "consent is required: the person must agree explicitly")
        error.headers = headers
        raise error
    return signup


def _language(signup: CaptureIn, request: Request) -> str | None:
    if signup.language:
        return signup.language
    accept = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    try:
        return Customer(email=signup.email, language=accept or None).language
    except ValidationError:
        return None


def _js_string(value: str) -> str:
    """A JavaScript string literal that cannot end a script element it is pasted into."""
    return json.dumps(value).replace("<", "\\u003c")


@router.get(
    "/v1/capture/settings",
    summary="Get the capture form settings",
    response_model=CaptureSettings,
    responses=error_responses(401),
)
async def get_capture_settings(account: CurrentAccount) -> CaptureSettings:
    return capture_settings_of(account)


@router.put(
    "/v1/capture/settings",
    summary="Change the capture form settings",
    response_model=CaptureSettings,
    responses=error_responses(401, 422),
)
async def put_capture_settings(
    body: CaptureSettingsUpdate, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> CaptureSettings:
    return await change_capture_settings(session, account, body, clock.now())


@router.post(
    "/v1/capture/settings/rotate-key",
    summary="Rotate the publishable key",
    response_model=CaptureSettings,
    responses=error_responses(401),
)
async def rotate_capture_key(
    account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> CaptureSettings:
    """A new `pk_…` key at once; forms still using the old one get 404 from now on."""
    return await rotate_publishable_key(session, account, clock.now())


@router.get(
    "/v1/capture/confirm/{token}",
    summary="Confirm a double opt-in sign-up",
    response_class=HTMLResponse,
    responses={404: INVALID_LINK_DOC},
)
async def confirm_opt_in(
    token: str, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> HTMLResponse:
    """The link of the confirmation email: an HTML page in the lead's language. The held
    sign-up becomes a lead (and is followed up); opening it again changes nothing."""
    window = dt.timedelta(days=settings.attribution_days)
    found = await confirm_signup(session, token[:200], now=clock.now(), attribution_window=window)
    if found is None:
        page = confirmation_page(None, None, confirmed=False)
        return HTMLResponse(page, status_code=404, headers=_NO_STORE)
    consent, account = found
    page = confirmation_page(consent.language, account.name, confirmed=True)
    return HTMLResponse(page, headers=_NO_STORE)


@router.get(
    "/v1/capture/{public_key}/form.js",
    summary="The embeddable capture form script",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}}, **error_responses(404)},
)
async def get_capture_form(public_key: str, session: SessionDep) -> Response:
    """Paste `<script src=".../v1/capture/pk_…/form.js" async></script>` where the form
    should appear: it renders a sign-up form (or enhances a `<form data-leadflow>` already
    on the page) that posts here. No third-party code."""
    account = await account_for_publishable_key(session, public_key)
    if account is None:
        raise not_found("capture form")
    consent = capture_settings_of(account).consent_text or ""
    script = FORM_JS.replace("__ENDPOINT__", _js_string(f"/v1/capture/{public_key}"))
    script = script.replace("__CONSENT__", _js_string(consent))
    return Response(
        script,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.options(
    "/v1/capture/{public_key}",
    summary="CORS preflight of the capture endpoint",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "CORS headers only for the account's allowed origins."}},
)
async def capture_preflight(public_key: str, request: Request, session: SessionDep) -> Response:
    account = await account_for_publishable_key(session, public_key)
    headers = _cors(account, request)
    if headers:
        headers |= {
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, Accept",
            "Access-Control-Max-Age": "600",
        }
    return Response(status_code=204, headers=headers or {"Vary": "Origin"})


@router.post(
    "/v1/capture/{public_key}",
    summary="Capture a sign-up from a form",
    status_code=202,
    response_model=CaptureAccepted,
    responses={
        303: {"description": "A plain HTML form post: to the account's thank-you URL."},
        **error_responses(404, 413, 422),
        415: {**error_responses(422)[422], "description": "A multipart body (send urlencoded)"},
        429: TOO_MANY_DOC,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": CaptureIn.model_json_schema()},
            },
        }
    },
)
async def capture_lead(
    public_key: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Public: authenticated by the publishable key alone. Needs `email` and `consent`;
    stores the proof of consent (time, IP, user agent, page, wording). The same fields may
    come as a plain HTML form (`application/x-www-form-urlencoded`, a form's default):
    without `Accept: application/json` it is answered with a 303 to the account's thank-you
    URL (or a thank-you page when none is set). A filled `website` field (the honeypot) is
    answered the same and stores nothing. The answer never tells whether the address was
    known. Limited per IP address and per account (429 with `Retry-After`)."""
    now = clock.now()
    limits = _limits(request)
    ip = request.client.host if request.client else "unknown"
    if wait := limits.ip.take(ip, now):
        raise too_many(wait, {})
    account = await account_for_publishable_key(session, public_key)
    if account is None:
        raise not_found("capture form")
    cors = _cors(account, request)
    if wait := limits.account.take(account.id, now):
        raise too_many(wait, cors)
    data, from_form = await _fields(request)
    signup = _parse(data, cors)
    if not signup.website:  # a filled honeypot: a bot, answered as a person, nothing stored
        await capture_signup(
            session,
            account,
            SignUp(
                email=str(signup.email),
                consent_text=signup.consent_text,
                consent_version=signup.consent_version,
                first_name=signup.first_name,
                last_name=signup.last_name,
                language=_language(signup, request),
                country=signup.country,
            ),
            Proof(
                ip=ip,
                user_agent=request.headers.get("user-agent"),
                page_url=signup.page_url or request.headers.get("referer"),
            ),
            now=now,
            attribution_window=dt.timedelta(days=settings.attribution_days),
            confirm_within=dt.timedelta(days=settings.capture_confirm_days),
        )
    wants_json = "application/json" in request.headers.get("accept", "")
    if from_form and not wants_json:
        thank_you = capture_settings_of(account).thank_you_url
        if thank_you:
            return RedirectResponse(thank_you, status_code=303, headers=cors)
        double = capture_settings_of(account).double_opt_in
        page = received_page(_language(signup, request), double_opt_in=double)
        return HTMLResponse(page, headers=cors)
    return JSONResponse({"status": "received"}, status_code=202, headers=cors)
