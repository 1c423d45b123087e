from __future__ import annotations

from fastapi import APIRouter, Depends, status

from leadflow.accounts.models import Account
from leadflow.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountSettings,
    AccountSettingsUpdate,
    MinDelays,
)
from leadflow.accounts.service import create_account, effective_min_delays
from leadflow.campaigns.enrollment import recheck_first_steps
from leadflow.deps import ClockDep, CurrentAccount, SessionDep, require_admin
from leadflow.kit.durations import format_duration, parse_duration
from leadflow.kit.errors import error_responses

router = APIRouter()


def settings_view(account: Account) -> AccountSettings:
    delays = {k: format_duration(v) for k, v in effective_min_delays(account).items()}
    return AccountSettings(
        account_id=account.id,
        name=account.name,
        lead_management_enabled=account.lead_management_enabled,
        default_currency=account.default_currency,
        timezone=account.timezone,
        sender_name=account.sender_name,
        sender_email=account.sender_email,
        min_delays=MinDelays(**delays),
        updated_at=account.updated_at,
    )


@router.post(
    "/v1/admin/accounts",
    tags=["admin"],
    summary="Create an account",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountCreated,
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 422),
)
async def create_account_route(
    body: AccountCreate, session: SessionDep, clock: ClockDep
) -> AccountCreated:
    """Creates a merchant account with its API key, webhook secret and built-in lead groups."""
    created = await create_account(session, body.name, clock.now())
    return AccountCreated(
        id=created.account.id,
        name=created.account.name,
        api_key=created.api_key,
        webhook_secret=created.account.webhook_secret,
    )


@router.get(
    "/v1/settings",
    tags=["settings"],
    summary="Read the account's settings",
    response_model=AccountSettings,
    responses=error_responses(401),
)
async def get_settings_route(account: CurrentAccount) -> AccountSettings:
    return settings_view(account)


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Update the account's settings",
    response_model=AccountSettings,
    responses=error_responses(401, 422),
)
async def put_settings_route(
    body: AccountSettingsUpdate, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> AccountSettings:
    """Takes the object `GET` returns; read-only fields are ignored, omitted fields unchanged.

    `min_delays` may be lowered down to `PT0S`.
    """
    changes = body.model_dump(
        exclude_unset=True, exclude={"account_id", "name", "updated_at", "min_delays"}
    )
    for field, value in changes.items():
        if value is None and field in ("lead_management_enabled", "default_currency", "timezone"):
            continue  # null for a required setting means "unchanged"
        setattr(account, field, str(value) if field == "sender_email" and value else value)
    if body.min_delays is not None:
        before = effective_min_delays(account)
        delays = dict(account.min_delays)
        for key, value in body.min_delays.model_dump(exclude_none=True).items():
            delays[key] = int(parse_duration(value).total_seconds())
        account.min_delays = delays
        for source_type, delay in effective_min_delays(account).items():
            if delay < before[source_type]:
                await recheck_first_steps(session, account.id, source_type)
    account.updated_at = clock.now()
    await session.flush()
    return settings_view(account)
