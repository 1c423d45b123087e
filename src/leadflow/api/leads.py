from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query

from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.kit.codes import normalize_country, normalize_language
from leadflow.kit.errors import error_responses, field_error
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.kit.times import DAY_BOUND, DayOrDateTime, bound
from leadflow.leads import service
from leadflow.leads.schemas import LeadDetail, LeadGroupOut, LeadGroupUpdate, LeadOut
from leadflow.lifecycle.account_settings import set_group_status
from leadflow.vocabulary import LeadStatus, SourceType

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]


def _code(field: str, value: str | None, normalize: Callable[[str], str]) -> str | None:
    if value is None:
        return None
    try:
        return normalize(value)
    except ValueError as exc:
        raise field_error(field, str(exc)) from None


@router.get(
    "/v1/leads",
    tags=["leads"],
    summary="List leads",
    response_model=Page[LeadOut],
    responses=error_responses(401, 422),
)
async def list_leads_route(
    account: CurrentAccount,
    session: SessionDep,
    source_type: SourceType | None = None,
    status: LeadStatus | None = None,
    email: str | None = None,
    country: str | None = None,
    language: str | None = None,
    captured_from: Annotated[
        DayOrDateTime | None, Query(description=f"{DAY_BOUND}. Inclusive.")
    ] = None,
    captured_to: Annotated[
        DayOrDateTime | None, Query(description=f"{DAY_BOUND} (up to its end). Exclusive.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[LeadOut]:
    """Newest first, with cursor pagination."""
    filters = service.LeadFilters(
        source_type=source_type.value if source_type else None,
        status=status.value if status else None,
        email=email,
        country=_code("country", country, normalize_country),
        language=_code("language", language, normalize_language),
        captured_from=bound(captured_from, account.timezone, end=False),
        captured_to=bound(captured_to, account.timezone, end=True),
    )
    return await service.list_leads(session, account.id, filters, limit, cursor)


@router.get(
    "/v1/leads/{lead_id}",
    tags=["leads"],
    summary="Get a lead with the events behind it",
    response_model=LeadDetail,
    responses=error_responses(401, 404),
)
async def get_lead_route(lead_id: str, account: CurrentAccount, session: SessionDep) -> LeadDetail:
    return await service.lead_detail(session, account.id, lead_id)


@router.get(
    "/v1/lead-groups",
    tags=["lead groups"],
    summary="List the built-in lead groups with live counts",
    response_model=Page[LeadGroupOut],
    responses=error_responses(401),
)
async def list_groups_route(account: CurrentAccount, session: SessionDep) -> Page[LeadGroupOut]:
    return await service.group_page(session, account.id)


@router.patch(
    "/v1/lead-groups/{key}",
    tags=["lead groups"],
    summary="Switch a lead group on or off",
    response_model=LeadGroupOut,
    responses=error_responses(401, 404, 422),
)
async def update_group_route(
    key: str, body: LeadGroupUpdate, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> LeadGroupOut:
    """An inactive group still captures and counts leads; no follow-up goes to its leads."""
    return await set_group_status(session, account.id, key, body.status, clock.now())
