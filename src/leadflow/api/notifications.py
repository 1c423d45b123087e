from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Response, status
from pydantic import BaseModel

from leadflow.api.deps import ClockDep, CurrentAccount, NotifierDep, SessionDep, SettingsDep
from leadflow.kit.errors import error_responses
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.notifications import service
from leadflow.notifications.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    IlnEventType,
    SecretRotated,
    notification_model,
)

router = APIRouter(tags=["instant lead notifications"])


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
    return await service.create_endpoint(
        session, account.id, body, clock.now(), settings.iln_allow_private
    )


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
    return await service.list_endpoints(session, account.id, limit, cursor)


@router.get(
    "/v1/iln/endpoints/{endpoint_id}",
    summary="Get a notification endpoint",
    response_model=EndpointOut,
    responses=error_responses(401, 404),
)
async def get_endpoint(
    endpoint_id: str, account: CurrentAccount, session: SessionDep
) -> EndpointOut:
    return await service.show_endpoint(session, account.id, endpoint_id)


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
    return await service.update_endpoint(
        session, account.id, endpoint_id, body, clock.now(), settings.iln_allow_private
    )


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
    await service.delete_endpoint(session, account.id, endpoint_id)
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
    grace = dt.timedelta(hours=settings.iln_secret_rotation_hours)
    return await service.rotate_endpoint_secret(
        session, account.id, endpoint_id, clock.now(), grace
    )


@router.post(
    "/v1/iln/endpoints/{endpoint_id}/test",
    summary="Send a ping to the endpoint now",
    response_model=DeliveryOut,
    responses=error_responses(401, 404),
)
async def ping(
    endpoint_id: str,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    notifier: NotifierDep,
) -> DeliveryOut:
    """Delivers a signed `ping` right away and answers with the outcome (status code, error).
    A failed ping is not retried."""
    return await service.ping(session, notifier, account.id, endpoint_id, clock.now())


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
    return await service.list_deliveries(
        session,
        account.id,
        endpoint_id=endpoint_id,
        status=status_,
        event_type=event_type,
        limit=limit,
        cursor=cursor,
    )


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
    return await service.redeliver(session, account.id, delivery_id, clock.now())


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
