"""Writing notifications to the outbox (in the caller's transaction), managing endpoints, and
the endpoint and delivery operations of the API (they flush; the caller commits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import table
from leadflow.kit.errors import field_error, not_found
from leadflow.kit.ids import new_id
from leadflow.kit.pagination import Page, keyset_page
from leadflow.kit.secrets import Reencrypted, reencrypt_batch
from leadflow.kit.signing import new_webhook_secret
from leadflow.models.campaigns import Campaign
from leadflow.models.notifications import IlnDelivery, IlnEndpoint
from leadflow.notifications.errors import DeliveryPending
from leadflow.notifications.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    IlnEventType,
    PingData,
    SecretRotated,
)
from leadflow.notifications.ssrf import UnsafeUrl, check_url
from leadflow.notifications.views import (
    delivery_view,
    endpoint_created_view,
    endpoint_view,
    secret_rotated_view,
)
from leadflow.vocabulary import DeliveryStatus

if TYPE_CHECKING:  # delivery.py imports this module
    from leadflow.notifications.delivery import Notifier


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
    return await emit_many(session, account_id, event_type, [(data, campaign_id)], now)


async def emit_many(
    session: AsyncSession,
    account_id: str,
    event_type: IlnEventType,
    items: Sequence[tuple[BaseModel, str | None]],
    now: dt.datetime,
) -> int:
    """``emit`` for many notifications of one type, each ``(data, campaign_id)``: the
    account's endpoints read once, the deliveries written in one statement per chunk.
    Returns how many deliveries were queued."""
    endpoints = (
        await session.execute(
            select(IlnEndpoint).where(
                IlnEndpoint.account_id == account_id, IlnEndpoint.enabled.is_(True)
            )
        )
    ).scalars()
    wanting = [
        endpoint
        for endpoint in endpoints
        if not endpoint.event_types or event_type.value in endpoint.event_types
    ]
    if not wanting:
        return 0
    rows = [
        delivery_row(endpoint, event_type.value, envelope(event_type.value, data, now), now)
        for data, campaign_id in items
        for endpoint in wanting
        if endpoint.campaign_id is None or endpoint.campaign_id == campaign_id
    ]
    if rows:  # an empty list of parameter sets would insert one row of defaults
        await session.execute(insert(table(IlnDelivery)), rows)
    return len(rows)


def delivery_row(
    endpoint: IlnEndpoint, event_type: str, payload: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """The outbox row of one notification to one endpoint."""
    delivery_id = new_id("dlv")
    return {
        "id": delivery_id,
        "account_id": endpoint.account_id,
        "endpoint_id": endpoint.id,
        "event_type": event_type,
        "webhook_id": delivery_id.replace("dlv_", "msg_"),
        "payload": payload,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def new_delivery(
    endpoint: IlnEndpoint, event_type: str, payload: dict[str, Any], now: dt.datetime
) -> IlnDelivery:
    return IlnDelivery(**delivery_row(endpoint, event_type, payload, now))


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
) -> EndpointCreated:
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
    return endpoint_created_view(endpoint)


async def list_endpoints(
    session: AsyncSession, account_id: str, limit: int, cursor: str | None
) -> Page[EndpointOut]:
    stmt = select(IlnEndpoint).where(IlnEndpoint.account_id == account_id)
    rows, next_cursor = await keyset_page(
        session, stmt, (IlnEndpoint.id,), limit=limit, cursor=cursor
    )
    return Page[EndpointOut](items=[endpoint_view(r) for r in rows], next_cursor=next_cursor)


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


async def show_endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> EndpointOut:
    return endpoint_view(await get_endpoint(session, account_id, endpoint_id))


async def update_endpoint(
    session: AsyncSession,
    account_id: str,
    endpoint_id: str,
    body: EndpointUpdate,
    now: dt.datetime,
    allow_private: bool,
) -> EndpointOut:
    endpoint = await get_endpoint(session, account_id, endpoint_id)
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
    return endpoint_view(endpoint)


async def delete_endpoint(session: AsyncSession, account_id: str, endpoint_id: str) -> None:
    """The endpoint and its deliveries."""
    await session.delete(await get_endpoint(session, account_id, endpoint_id))
    await session.flush()


async def rotate_endpoint_secret(
    session: AsyncSession, account_id: str, endpoint_id: str, now: dt.datetime, grace: dt.timedelta
) -> SecretRotated:
    endpoint = await get_endpoint(session, account_id, endpoint_id)
    rotate_secret(endpoint, now, grace)
    await session.flush()
    return secret_rotated_view(endpoint)


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


async def ping(
    session: AsyncSession, notifier: Notifier, account_id: str, endpoint_id: str, now: dt.datetime
) -> DeliveryOut:
    """Attempt a signed ``ping`` once, then store it with its outcome. Attempting before
    writing holds no write lock during the HTTP call. A failed ping is not retried."""
    endpoint = await get_endpoint(session, account_id, endpoint_id)
    event_type = IlnEventType.PING.value
    payload = envelope(event_type, PingData(endpoint_id=endpoint.id), now)
    delivery = new_delivery(endpoint, event_type, payload, now)
    outcome = await notifier.attempt(endpoint, delivery.webhook_id, payload, now)
    delivery.attempts = 1
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.next_attempt_at = None
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
    else:
        delivery.status = DeliveryStatus.FAILED
        if outcome.status_code == 410:  # as for any delivery: the receiver is gone
            endpoint.enabled = False
            endpoint.disabled_reason = "410 Gone"
            endpoint.updated_at = now
    session.add(delivery)
    await session.flush()
    return delivery_view(delivery)


async def list_deliveries(
    session: AsyncSession,
    account_id: str,
    *,
    endpoint_id: str | None,
    status: str | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
) -> Page[DeliveryOut]:
    """Newest first."""
    stmt = select(IlnDelivery).where(IlnDelivery.account_id == account_id)
    if endpoint_id:
        stmt = stmt.where(IlnDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(IlnDelivery.status == status)
    if event_type:
        stmt = stmt.where(IlnDelivery.event_type == event_type)
    rows, next_cursor = await keyset_page(
        session,
        stmt,
        (IlnDelivery.created_at, IlnDelivery.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )
    return Page[DeliveryOut](items=[delivery_view(r) for r in rows], next_cursor=next_cursor)


async def redeliver(
    session: AsyncSession, account_id: str, delivery_id: str, now: dt.datetime
) -> DeliveryOut:
    """Queue the same notification (same ``webhook-id``) for a new round of attempts."""
    delivery = (
        await session.execute(
            select(IlnDelivery).where(
                IlnDelivery.account_id == account_id, IlnDelivery.id == delivery_id
            )
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise not_found("delivery")
    if delivery.status == DeliveryStatus.PENDING:
        raise DeliveryPending
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.schedule_step = 0
    delivery.retry_until = None  # a new horizon from its next failure
    delivery.next_attempt_at = now
    delivery.updated_at = now
    await session.flush()
    return delivery_view(delivery)


async def reencrypt_endpoint_secrets(
    session: AsyncSession, after: tuple[str, ...] | None, limit: int
) -> Reencrypted:
    """One batch of ``leadflow secret-key rotate``: endpoint secrets under the current key."""
    return await reencrypt_batch(
        session,
        IlnEndpoint,
        [IlnEndpoint.id],
        [IlnEndpoint.secret, IlnEndpoint.previous_secret],
        after=after,
        limit=limit,
    )
