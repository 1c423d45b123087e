"""``/v1/integrations``: the merchant's platform webhook secrets (write-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep, SettingsDep
from leadflow.integrations import service
from leadflow.integrations.schemas import IntegrationIn, IntegrationOut, Platform
from leadflow.kit.errors import error_responses
from leadflow.kit.pagination import Page

router = APIRouter(tags=["integrations"])


async def _platform(platform: str) -> Platform:
    return service.platform_or_404(platform)


# A dependency, so an unknown platform is a 404 before the body is looked at.
PlatformPath = Annotated[Platform, Depends(_platform)]


@router.get(
    "/v1/integrations",
    summary="List the platform integrations",
    response_model=Page[IntegrationOut],
    responses=error_responses(401),
)
async def list_integrations(
    account: CurrentAccount, session: SessionDep, settings: SettingsDep
) -> Page[IntegrationOut]:
    """All four platforms, configured or not, with the webhook URL to give each. Secrets are
    never returned."""
    return await service.list_integrations(session, account.id, settings.base_url)


@router.put(
    "/v1/integrations/{platform}",
    summary="Set a platform's webhook secret",
    response_model=IntegrationOut,
    responses=error_responses(401, 404, 422),
)
async def put_integration(
    account: CurrentAccount,
    platform: PlatformPath,
    body: IntegrationIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> IntegrationOut:
    """`platform` is `stripe`, `shopify`, `woocommerce` or `paypro`. Replaces the stored
    secret; PayPro Global also needs its `validation_key`. Deliveries are verified with it from
    now on."""
    return await service.put_integration(
        session, account.id, platform, body, clock.now(), settings.base_url
    )


@router.delete(
    "/v1/integrations/{platform}",
    summary="Remove a platform's webhook secret",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404),
)
async def delete_integration(
    account: CurrentAccount, platform: PlatformPath, session: SessionDep
) -> Response:
    """Deliveries from the platform are refused (409) until a secret is set again."""
    await service.delete_integration(session, account.id, platform)
    return Response(status_code=204)
