from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query

from leadflow.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.domain import LeadStatus, SourceType
from leadflow.kit.codes import format_money, normalize_country, normalize_language
from leadflow.kit.errors import error_responses, field_error, not_found
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.kit.times import UtcDateTime
from leadflow.leads import service
from leadflow.leads.models import Lead, LeadGroup
from leadflow.leads.schemas import (
    ConversionOut,
    FollowupOut,
    LeadCustomer,
    LeadDetail,
    LeadEventOut,
    LeadGroupOut,
    LeadGroupUpdate,
    LeadOut,
    LeadProduct,
    SequenceOut,
)

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]


def lead_view(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        source_type=SourceType(lead.source_type),
        status=LeadStatus(lead.status),
        reference=lead.reference,
        customer=LeadCustomer(
            email=lead.email,
            first_name=lead.first_name,
            last_name=lead.last_name,
            language=lead.language,
            country=lead.country,
            timezone=lead.timezone,
        ),
        products=[LeadProduct.model_validate(p) for p in lead.products],
        amount=format_money(lead.amount, lead.currency),
        currency=lead.currency,
        recovery_url=lead.recovery_url,
        attributes=lead.attributes,
        captured_at=lead.captured_at,
        converted_at=lead.converted_at,
    )


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
    captured_from: Annotated[UtcDateTime | None, Query(description="Inclusive.")] = None,
    captured_to: Annotated[UtcDateTime | None, Query(description="Exclusive.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[LeadOut]:
    """Newest first, with cursor pagination."""
    if email is not None and "\x00" in email:
        raise field_error("email", "must not contain NUL characters")
    filters = service.LeadFilters(
        source_type=source_type.value if source_type else None,
        status=status.value if status else None,
        email=email,
        country=_code("country", country, normalize_country),
        language=_code("language", language, normalize_language),
        captured_from=captured_from,
        captured_to=captured_to,
    )
    leads, next_cursor = await service.list_leads(session, account.id, filters, limit, cursor)
    return Page[LeadOut](items=[lead_view(lead) for lead in leads], next_cursor=next_cursor)


@router.get(
    "/v1/leads/{lead_id}",
    tags=["leads"],
    summary="Get a lead with the events behind it",
    response_model=LeadDetail,
    responses=error_responses(401, 404),
)
async def get_lead_route(lead_id: str, account: CurrentAccount, session: SessionDep) -> LeadDetail:
    lead = await service.get_lead(session, account.id, lead_id)
    if lead is None:
        raise not_found("lead")
    events = [
        LeadEventOut(
            id=event.id,
            type=event.type,
            source=event.source,
            role=role,
            occurred_at=event.occurred_at,
            received_at=event.received_at,
        )
        for event, role in await service.lead_events(session, lead)
    ]
    enrollment, messages, conversion = await service.lead_sequence(session, lead)
    sequence = None
    if enrollment is not None:
        active = enrollment.state == "active"
        sequence = SequenceOut(
            campaign_id=enrollment.campaign_id,
            variant_id=enrollment.variant_id,
            state=enrollment.state,
            stop_reason=enrollment.stop_reason,
            next_step=enrollment.next_step if active else None,
            next_due_at=enrollment.next_due_at if active else None,
            followups=[
                FollowupOut(
                    step=m.step,
                    status=m.status,
                    subject=m.subject,
                    sent_at=m.sent_at,
                    last_error=m.last_error,
                )
                for m in messages
            ],
        )
    credited = None
    if conversion is not None:
        credited = ConversionOut(
            converted_at=conversion.converted_at,
            amount=format_money(conversion.amount, conversion.currency),
            currency=conversion.currency,
            campaign_id=conversion.campaign_id,
            variant_id=conversion.variant_id,
            step=conversion.step,
        )
    return LeadDetail(
        **lead_view(lead).model_dump(), events=events, sequence=sequence, conversion=credited
    )


def group_view(group: LeadGroup, counts: dict[str, int]) -> LeadGroupOut:
    return LeadGroupOut(
        key=SourceType(group.key),
        name=group.name,
        source_type=SourceType(group.key),
        status="active" if group.active else "inactive",
        open_leads=counts.get(group.key, 0),
    )


@router.get(
    "/v1/lead-groups",
    tags=["lead groups"],
    summary="List the built-in lead groups with live counts",
    response_model=Page[LeadGroupOut],
    responses=error_responses(401),
)
async def list_groups_route(account: CurrentAccount, session: SessionDep) -> Page[LeadGroupOut]:
    counts = await service.open_lead_counts(session, account.id)
    groups = await service.list_groups(session, account.id)
    return Page[LeadGroupOut](items=[group_view(g, counts) for g in groups], next_cursor=None)


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
    group = await service.get_group(session, account.id, key)
    if group is None:
        raise not_found("lead group")
    group.active = body.status == "active"
    group.updated_at = clock.now()
    await session.flush()
    counts = await service.open_lead_counts(session, account.id)
    return group_view(group, counts)
