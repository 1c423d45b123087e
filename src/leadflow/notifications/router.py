from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import select

from leadflow.deps import ClockDep, CurrentAccount, SessionDep, SettingsDep
from leadflow.kit.errors import AppError, error_responses, not_found
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, keyset_page
from leadflow.notifications import service
from leadflow.notifications.delivery import DeliveryReport, notifier_for
from leadflow.notifications.models import IlnDelivery, IlnEndpoint
from leadflow.notifications.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    IlnEventType,
    Notification,
    PingData,
    SecretRotated,
    notification_model,
)

router = APIRouter(tags=["instant lead notifications"])


def endpoint_view(endpoint: IlnEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=endpoint.event_types,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        campaign_id=endpoint.campaign_id,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def delivery_view(delivery: IlnDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_type=delivery.event_type,
        webhook_id=delivery.webhook_id,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_attempt_at=delivery.last_attempt_at,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        payload=Notification.model_validate(delivery.payload),
    )


@router.post(
    "/v1/iln/endpoints",
    summary="Add a notification endpoint",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointCreated,
    responses=error_responses(401, 422),
)
async def create_endpoint(
    body: EndpointIn,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> EndpointCreated:
    """The response carries the endpoint's `whsec_…` secret; it is never shown again."""
    endpoint = await service.create_endpoint(
        session, account.id, body, clock.now(), settings.iln_allow_private
    )
    return EndpointCreated(**endpoint_view(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/iln/endpoints",
    summary="List notification endpoints",
    response_model=Page[EndpointOut],
    responses=error_responses(401, 422),
)
async def list_endpoints(
    account: CurrentAccount,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[EndpointOut]:
    stmt = select(IlnEndpoint).where(IlnEndpoint.account_id == account.id)
    rows, next_cursor = await keyset_page(
        session, stmt, (IlnEndpoint.id,), limit=limit, cursor=cursor
    )
    return Page[EndpointOut](items=[endpoint_view(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/v1/iln/endpoints/{endpoint_id}",
    summary="Get a notification endpoint",
    response_model=EndpointOut,
    responses=error_responses(401, 404),
)
async def get_endpoint(
    endpoint_id: str, account: CurrentAccount, session: SessionDep
) -> EndpointOut:
    return endpoint_view(await service.get_endpoint(session, account.id, endpoint_id))


@router.patch(
    "/v1/iln/endpoints/{endpoint_id}",
    summary="Change a notification endpoint",
    response_model=EndpointOut,
    responses=error_responses(401, 404, 422),
)
async def update_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> EndpointOut:
    """Re-enabling an endpoint (`enabled: true`) clears the reason it was disabled."""
    endpoint = await service.get_endpoint(session, account.id, endpoint_id)
    await service.update_endpoint(session, endpoint, body, clock.now(), settings.iln_allow_private)
    return endpoint_view(endpoint)


@router.delete(
    "/v1/iln/endpoints/{endpoint_id}",
    summary="Delete a notification endpoint and its deliveries",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404),
)
async def delete_endpoint(
    endpoint_id: str, account: CurrentAccount, session: SessionDep
) -> Response:
    endpoint = await service.get_endpoint(session, account.id, endpoint_id)
    await session.delete(endpoint)
    return Response(status_code=204)


@router.post(
    "/v1/iln/endpoints/{endpoint_id}/rotate-secret",
    summary="Rotate an endpoint's signing secret",
    response_model=SecretRotated,
    responses=error_responses(401, 404),
)
async def rotate_secret(
    endpoint_id: str,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SecretRotated:
    """Until `previous_secret_expires_at` (LEADFLOW_ILN_SECRET_ROTATION_HOURS) every
    notification is signed with both secrets, so receivers can switch without losing any."""
    endpoint = await service.get_endpoint(session, account.id, endpoint_id)
    grace = dt.timedelta(hours=settings.iln_secret_rotation_hours)
    secret = service.rotate_secret(endpoint, clock.now(), grace)
    await session.flush()
    return SecretRotated(
        secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post(
    "/v1/iln/endpoints/{endpoint_id}/test",
    summary="Send a ping to the endpoint now",
    response_model=DeliveryOut,
    responses=error_responses(401, 404),
)
async def ping(
    endpoint_id: str,
    request: Request,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> DeliveryOut:
    """Delivers a signed `ping` right away and answers with the outcome (status code, error).
    A failed ping is not retried."""
    endpoint = await service.get_endpoint(session, account.id, endpoint_id)
    now = clock.now()
    payload = service.envelope(IlnEventType.PING.value, PingData(endpoint_id=endpoint.id), now)
    delivery = service.new_delivery(endpoint, IlnEventType.PING.value, payload, now)
    session.add(delivery)
    await session.commit()
    await notifier_for(request.app).deliver(delivery.id, None, DeliveryReport())
    await session.refresh(delivery)
    if delivery.status == "pending":  # a ping is a one-off check, not retried
        delivery.status = "failed"
        delivery.next_attempt_at = None
    return delivery_view(delivery)


@router.get(
    "/v1/iln/deliveries",
    summary="List notification deliveries",
    response_model=Page[DeliveryOut],
    responses=error_responses(401, 422),
)
async def list_deliveries(
    account: CurrentAccount,
    session: SessionDep,
    endpoint_id: str | None = None,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(pending|delivered|failed)$")
    ] = None,
    event_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[DeliveryOut]:
    """Newest first."""
    stmt = select(IlnDelivery).where(IlnDelivery.account_id == account.id)
    if endpoint_id:
        stmt = stmt.where(IlnDelivery.endpoint_id == endpoint_id)
    if status_:
        stmt = stmt.where(IlnDelivery.status == status_)
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


@router.post(
    "/v1/iln/deliveries/{delivery_id}/redeliver",
    summary="Deliver a notification again",
    response_model=DeliveryOut,
    responses=error_responses(401, 404, 409),
)
async def redeliver(
    delivery_id: str, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> DeliveryOut:
    """Queues the same notification (same `webhook-id`) for a new round of attempts."""
    delivery = (
        await session.execute(
            select(IlnDelivery).where(
                IlnDelivery.account_id == account.id, IlnDelivery.id == delivery_id
            )
        )
    ).scalar_one_or_none()
    if delivery is None:
        raise not_found("delivery")
    if delivery.status == "pending":
        raise AppError(409, "already_pending", "The delivery is still being attempted.")
    now = clock.now()
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now
    await session.flush()
    return delivery_view(delivery)


def document_notifications(app: FastAPI) -> None:
    """Describe every notification in the OpenAPI `webhooks` section (what receivers get)."""
    for event_type in IlnEventType:
        model = notification_model(event_type.value)

        async def receiver(body: BaseModel) -> None:
            """Sent as a signed POST (Standard Webhooks headers `webhook-id`,
            `webhook-timestamp`, `webhook-signature`). Answer any 2xx to acknowledge; 410
            disables the endpoint; other answers are retried."""

        # String annotations (PEP 563) cannot see the local model: set the real class.
        receiver.__annotations__ = {"body": model, "return": None}
        app.webhooks.post(
            event_type.value,
            summary=f"Notification {event_type.value}",
            tags=["instant lead notifications"],
            response_description="Any 2xx acknowledges the notification.",
        )(receiver)
