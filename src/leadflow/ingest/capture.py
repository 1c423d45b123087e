"""Opt-in capture: a sign-up from a merchant's form becomes a ``lead.opt_in`` event through
the event store (the same lead machinery as webhooks), with its proof of consent kept in
``capture_consents`` (this package alone writes it). With double opt-in the sign-up waits
there, unconfirmed, until its emailed link is opened; only then is the lead created."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.capture import capture_settings_of
from leadflow.ingest.schemas import Customer, EventIn
from leadflow.ingest.service import Delivery, ingest_events
from leadflow.kit.ids import new_id
from leadflow.models.accounts import Account
from leadflow.models.capture import CaptureConsent
from leadflow.vocabulary import EventType

CAPTURE_SOURCE = "capture"
CONFIRMED, PENDING, EXPIRED = "confirmed", "pending", "expired"


@dataclass(frozen=True)
class Proof:
    """Where and how the consent was given (from the request)."""

    ip: str | None
    user_agent: str | None
    page_url: str | None


@dataclass(frozen=True)
class SignUp:
    """A validated form submission."""

    email: str
    consent_text: str | None = None
    consent_version: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None
    country: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


async def capture_signup(
    session: AsyncSession,
    account: Account,
    signup: SignUp,
    proof: Proof,
    *,
    now: dt.datetime,
    attribution_window: dt.timedelta,
    confirm_within: dt.timedelta,
) -> CaptureConsent:
    """Record the consent; without double opt-in capture the lead at once, with it hold the
    sign-up until confirmed (its confirmation email goes out from a worker job). Returns the
    consent row. The caller answers the same whatever happened (a known address is never
    revealed)."""
    settings = capture_settings_of(account)
    double = settings.double_opt_in
    if double:
        waiting = await _waiting(session, account.id, signup.email.lower(), now)
        if waiting is not None:
            # Its confirmation is out: signing up again sends no second email (a form must
            # not become a way to flood someone's inbox).
            return waiting
    consent = CaptureConsent(
        id=new_id("cns"),
        account_id=account.id,
        email=signup.email.lower(),
        status=PENDING if double else CONFIRMED,
        created_at=now,
        ip=_clip(proof.ip, 45),
        user_agent=_clip(proof.user_agent, 500),
        page_url=_clip(proof.page_url, 2048),
        consent_text=signup.consent_text or settings.consent_text,
        consent_version=signup.consent_version or settings.consent_version,
        language=signup.language,
        details={
            "first_name": signup.first_name,
            "last_name": signup.last_name,
            "country": signup.country,
            "attributes": signup.attributes,
        },
        confirmed_at=None if double else now,
        expires_at=now + confirm_within if double else None,
    )
    session.add(consent)
    await session.flush()
    if not double:
        await _capture_lead(session, account, consent, now, attribution_window)
    return consent


async def confirm_signup(
    session: AsyncSession,
    token: str,
    *,
    now: dt.datetime,
    attribution_window: dt.timedelta,
) -> tuple[CaptureConsent, Account] | None:
    """Open a confirmation link: the held sign-up becomes a lead (once; opening the link again
    changes nothing). Returns it and its account; None for a link that is not valid or has
    expired."""
    consent_id, _, signature = token.partition(".")
    consent = await session.get(CaptureConsent, consent_id, with_for_update=True)
    if consent is None:
        return None
    account = await session.get(Account, consent.account_id)
    if account is None or not hmac.compare_digest(
        signature, _signature(account.link_secret, consent.id)
    ):
        return None
    if consent.status == CONFIRMED:
        return consent, account
    if consent.status != PENDING or (consent.expires_at and consent.expires_at <= now):
        return None
    consent.status = CONFIRMED
    consent.confirmed_at = now
    await session.flush()
    await _capture_lead(session, account, consent, now, attribution_window)
    return consent, account


async def _waiting(
    session: AsyncSession, account_id: str, email: str, now: dt.datetime
) -> CaptureConsent | None:
    found = await session.scalars(
        select(CaptureConsent)
        .where(
            CaptureConsent.account_id == account_id,
            CaptureConsent.email == email,
            CaptureConsent.status == PENDING,
            CaptureConsent.expires_at > now,
        )
        .limit(1)
    )
    return found.first()


def confirmation_token(account: Account, consent: CaptureConsent) -> str:
    return f"{consent.id}.{_signature(account.link_secret, consent.id)}"


def _signature(secret: str, consent_id: str) -> str:
    digest = hmac.new(secret.encode(), f"optin:{consent_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


async def expire_signups(session: AsyncSession, now: dt.datetime, limit: int = 1000) -> int:
    """Unconfirmed sign-ups past their time: marked expired, the person's details dropped
    (only the proof that a confirmation was asked for stays)."""
    ids = list(
        await session.scalars(
            select(CaptureConsent.id)
            .where(CaptureConsent.status == PENDING, CaptureConsent.expires_at <= now)
            .limit(limit)
        )
    )
    if ids:
        await session.execute(
            update(CaptureConsent)
            .where(CaptureConsent.id.in_(ids), CaptureConsent.status == PENDING)
            .values(status=EXPIRED, details={})
            .execution_options(synchronize_session=False)
        )
    return len(ids)


async def _capture_lead(
    session: AsyncSession,
    account: Account,
    consent: CaptureConsent,
    now: dt.datetime,
    attribution_window: dt.timedelta,
) -> None:
    details = consent.details or {}
    attributes = dict(details.get("attributes") or {})
    perk = capture_settings_of(account).perk
    if perk:
        attributes["perk"] = perk
    event = EventIn(
        type=EventType.LEAD_OPT_IN,
        occurred_at=consent.confirmed_at or now,
        customer=Customer(
            email=consent.email,
            first_name=details.get("first_name"),
            last_name=details.get("last_name"),
            language=consent.language,
            country=details.get("country"),
        ),
        attributes=attributes,
    )
    raw = json.dumps({"consent_id": consent.id, **event.model_dump(mode="json")})
    (result,) = await ingest_events(
        session,
        account,
        [Delivery(consent.id, event, raw)],
        now=now,
        attribution_window=attribution_window,
        source=CAPTURE_SOURCE,
    )
    consent.lead_id = result.lead_id
    await session.flush()


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else None
