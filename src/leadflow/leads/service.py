"""Reading leads and lead groups, always scoped by account (lead groups are written by
accounts/)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.errors import not_found
from leadflow.kit.pagination import Page, keyset_page
from leadflow.leads.schemas import LeadDetail, LeadGroupOut, LeadOut
from leadflow.leads.views import group_view, lead_detail_view, lead_view
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.events import Event
from leadflow.models.leads import Conversion, Lead, LeadEvent, LeadGroup
from leadflow.vocabulary import LeadStatus


@dataclass
class LeadFilters:
    source_type: str | None = None
    status: str | None = None
    email: str | None = None
    country: str | None = None
    language: str | None = None
    captured_from: dt.datetime | None = None
    captured_to: dt.datetime | None = None


def _filtered(account_id: str, filters: LeadFilters) -> Select[Lead]:
    stmt = select(Lead).where(Lead.account_id == account_id)
    if filters.source_type:
        stmt = stmt.where(Lead.source_type == filters.source_type)
    if filters.status:
        stmt = stmt.where(Lead.status == filters.status)
    if filters.email:
        stmt = stmt.where(Lead.email == filters.email.lower())
    if filters.country:
        stmt = stmt.where(Lead.country == filters.country)
    if filters.language:
        stmt = stmt.where(Lead.language == filters.language)
    if filters.captured_from:
        stmt = stmt.where(Lead.captured_at >= filters.captured_from)
    if filters.captured_to:
        stmt = stmt.where(Lead.captured_at < filters.captured_to)
    return stmt


async def list_leads(
    session: AsyncSession, account_id: str, filters: LeadFilters, limit: int, cursor: str | None
) -> Page[LeadOut]:
    """Newest first; the cursor is the (captured_at, id) of the last lead returned."""
    leads, next_cursor = await keyset_page(
        session,
        _filtered(account_id, filters),
        (Lead.captured_at, Lead.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )
    return Page[LeadOut](items=[lead_view(lead) for lead in leads], next_cursor=next_cursor)


async def get_lead(session: AsyncSession, account_id: str, lead_id: str) -> Lead | None:
    return (
        await session.execute(select(Lead).where(Lead.account_id == account_id, Lead.id == lead_id))
    ).scalar_one_or_none()


async def lead_detail(session: AsyncSession, account_id: str, lead_id: str) -> LeadDetail:
    """The lead with the events behind it, its follow-up sequence and its conversion."""
    lead = await get_lead(session, account_id, lead_id)
    if lead is None:
        raise not_found("lead")
    events = await lead_events(session, lead)
    enrollment, messages, conversion = await lead_sequence(session, lead)
    return lead_detail_view(lead, events, enrollment, messages, conversion)


async def lead_events(session: AsyncSession, lead: Lead) -> list[tuple[Event, str]]:
    rows = await session.execute(
        select(Event, LeadEvent.role)
        .join(LeadEvent, LeadEvent.event_id == Event.id)
        .where(LeadEvent.lead_id == lead.id, LeadEvent.account_id == lead.account_id)
        .order_by(Event.occurred_at, Event.id)
    )
    return [(event, role) for event, role in rows]


async def lead_sequence(
    session: AsyncSession, lead: Lead
) -> tuple[Enrollment | None, list[Message], Conversion | None]:
    """The lead's enrollment, its follow-ups in step order, and its conversion, if any."""
    enrollment = (
        await session.execute(select(Enrollment).where(Enrollment.lead_id == lead.id))
    ).scalar_one_or_none()
    messages: list[Message] = []
    if enrollment is not None:
        messages = list(
            (
                await session.execute(
                    select(Message)
                    .where(Message.enrollment_id == enrollment.id)
                    .order_by(Message.step)
                )
            ).scalars()
        )
    conversion = (
        await session.execute(select(Conversion).where(Conversion.lead_id == lead.id))
    ).scalar_one_or_none()
    return enrollment, messages, conversion


async def open_lead_counts(session: AsyncSession, account_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(Lead.source_type, func.count())
        .where(Lead.account_id == account_id, Lead.status == LeadStatus.OPEN.value)
        .group_by(Lead.source_type)
    )
    return {source_type: count for source_type, count in rows}


async def list_groups(session: AsyncSession, account_id: str) -> list[LeadGroup]:
    rows = await session.execute(
        select(LeadGroup).where(LeadGroup.account_id == account_id).order_by(LeadGroup.position)
    )
    return list(rows.scalars())


async def group_page(session: AsyncSession, account_id: str) -> Page[LeadGroupOut]:
    """Every lead group of the account with its live count of open leads."""
    counts = await open_lead_counts(session, account_id)
    groups = await list_groups(session, account_id)
    return Page[LeadGroupOut](items=[group_view(g, counts) for g in groups], next_cursor=None)


async def group_out(session: AsyncSession, group: LeadGroup) -> LeadGroupOut:
    """One lead group with its live count of open leads."""
    return group_view(group, await open_lead_counts(session, group.account_id))
