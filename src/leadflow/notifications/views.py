"""Notification endpoints and deliveries as the API shows them."""

from __future__ import annotations

from leadflow.models.notifications import IlnDelivery, IlnEndpoint
from leadflow.notifications.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointOut,
    Notification,
    SecretRotated,
)


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


def endpoint_created_view(endpoint: IlnEndpoint) -> EndpointCreated:
    """The only view that carries the secret: shown once, at creation."""
    return EndpointCreated(**endpoint_view(endpoint).model_dump(), secret=endpoint.secret)


def secret_rotated_view(endpoint: IlnEndpoint) -> SecretRotated:
    return SecretRotated(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
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
