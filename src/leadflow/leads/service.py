"""Reading leads and lead groups, always scoped by account."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.dispatch.models import Enrollment, Message
from leadflow.domain import LeadStatus
from leadflow.ingest.models import Event
from leadflow.kit.pagination import keyset_page
from leadflow.leads.models import Conversion, Lead, LeadEvent, LeadGroup


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
) -> tuple[list[Lead], str | None]:
    """Newest first; the cursor is the (captured_at, id) of the last lead returned."""
    return await keyset_page(
        session,
        _filtered(account_id, filters),
        (Lead.captured_at, Lead.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


async def get_lead(session: AsyncSession, account_id: str, lead_id: str) -> Lead | None:
    if "\x00" in lead_id:  # no id holds one, and PostgreSQL refuses it in a query
        return None
    return (
        await session.execute(select(Lead).where(Lead.account_id == account_id, Lead.id == lead_id))
    ).scalar_one_or_none()


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


async def get_group(session: AsyncSession, account_id: str, key: str) -> LeadGroup | None:
    if "\x00" in key:  # no key holds one, and PostgreSQL refuses it in a query
        return None
    return (
        await session.execute(
            select(LeadGroup).where(LeadGroup.account_id == account_id, LeadGroup.key == key)
        )
    ).scalar_one_or_none()
