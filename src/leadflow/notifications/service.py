"""Writing notifications to the outbox (in the caller's transaction) and managing endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.campaigns.models import Campaign
from leadflow.kit.errors import field_error, not_found
from leadflow.kit.ids import new_id
from leadflow.kit.signing import new_webhook_secret
from leadflow.notifications.models import IlnDelivery, IlnEndpoint
from leadflow.notifications.schemas import (
    EndpointIn,
    EndpointUpdate,
    IlnEventType,
)
from leadflow.notifications.ssrf import UnsafeUrl, check_url


def envelope(event_type: str, data: BaseModel | dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return {
        "type": event_type,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": body,
    }


async def emit(
    session: AsyncSession,
    account_id: str,
    event_type: IlnEventType,
    data: BaseModel,
    now: dt.datetime,
    *,
    campaign_id: str | None = None,
) -> int:
    """Queue a notification for every enabled endpoint that wants it. Runs in the caller's
    transaction, so a rolled-back change leaves no notification behind."""
    endpoints = (
        await session.execute(
            select(IlnEndpoint).where(
                IlnEndpoint.account_id == account_id,
                IlnEndpoint.enabled.is_(True),
                or_(IlnEndpoint.campaign_id.is_(None), IlnEndpoint.campaign_id == campaign_id),
            )
        )
    ).scalars()
    payload = envelope(event_type.value, data, now)
    queued = 0
    for endpoint in endpoints:
        if endpoint.event_types and event_type.value not in endpoint.event_types:
            continue
        session.add(new_delivery(endpoint, event_type.value, payload, now))
        queued += 1
    return queued


def new_delivery(
    endpoint: IlnEndpoint, event_type: str, payload: dict[str, Any], now: dt.datetime
) -> IlnDelivery:
    delivery_id = new_id("dlv")
    return IlnDelivery(
        id=delivery_id,
        account_id=endpoint.account_id,
        endpoint_id=endpoint.id,
        event_type=event_type,
        webhook_id=delivery_id.replace("dlv_", "msg_"),
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


async def _checked_url(url: str, allow_private: bool) -> str:
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeUrl as exc:
        raise field_error("url", str(exc)) from None
    return url


async def _checked_campaign(session: AsyncSession, account_id: str, campaign_id: str) -> str:
    found = (
        await session.execute(
            select(Campaign.id).where(Campaign.account_id == account_id, Campaign.id == campaign_id)
        )
    ).first()
    if found is None:
        raise field_error("campaign_id", "no such campaign")
    return campaign_id


async def create_endpoint(
    session: AsyncSession, account_id: str, body: EndpointIn, now: dt.datetime, allow_private: bool
) -> IlnEndpoint:
    url = await _checked_url(str(body.url), allow_private)
    if body.campaign_id is not None:
        await _checked_campaign(session, account_id, body.campaign_id)
    endpoint = IlnEndpoint(
        id=new_id("ep"),
        account_id=account_id,
        url=url,
        description=body.description,
        event_types=sorted({t.value for t in body.event_types}),
        enabled=body.enabled,
        campaign_id=body.campaign_id,
        secret=new_webhook_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> IlnEndpoint:
    endpoint = (
        await session.execute(
            select(IlnEndpoint).where(
                IlnEndpoint.account_id == account_id, IlnEndpoint.id == endpoint_id
            )
        )
    ).scalar_one_or_none()
    if endpoint is None:
        raise not_found("endpoint")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    endpoint: IlnEndpoint,
    body: EndpointUpdate,
    now: dt.datetime,
    allow_private: bool,
) -> IlnEndpoint:
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        if body.url is None:
            raise field_error("url", "must not be null")
        endpoint.url = await _checked_url(str(body.url), allow_private)
    if "event_types" in changes:
        if body.event_types is None:
            raise field_error("event_types", "must not be null; [] subscribes to every event")
        endpoint.event_types = sorted({t.value for t in body.event_types})
    if "description" in changes:
        endpoint.description = body.description
    if "campaign_id" in changes:
        endpoint.campaign_id = (
            await _checked_campaign(session, endpoint.account_id, body.campaign_id)
            if body.campaign_id
            else None
        )
    if "enabled" in changes:
        if body.enabled is None:
            raise field_error("enabled", "must not be null")
        endpoint.enabled = body.enabled
        if body.enabled:
            endpoint.disabled_reason = None
    endpoint.updated_at = now
    await session.flush()
    return endpoint


def rotate_secret(endpoint: IlnEndpoint, now: dt.datetime, grace: dt.timedelta) -> str:
    """New secret; the old one keeps signing (alongside) until the grace period ends."""
    endpoint.previous_secret = endpoint.secret if grace > dt.timedelta(0) else None
    endpoint.previous_secret_expires_at = now + grace if grace > dt.timedelta(0) else None
    endpoint.secret = new_webhook_secret()
    endpoint.updated_at = now
    return endpoint.secret


def signing_secrets(endpoint: IlnEndpoint, now: dt.datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets
