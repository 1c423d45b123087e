"""Campaigns as the API shows them, and the API's campaign operations that answer with those
views (the rules and the writes are in campaigns.service; these only add the reads a view
needs). They flush; the caller commits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.schemas import AbTestState
from leadflow.abtest.service import get_test, settings_of, tests_for
from leadflow.campaigns import service
from leadflow.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignUpdate,
    SendWindow,
    StepOut,
    VariantIn,
    VariantOut,
    VariantUpdate,
)
from leadflow.kit.durations import format_duration
from leadflow.kit.pagination import Page
from leadflow.models.abtest import AbTest
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant

# -- ORM rows to response schemas -----------------------------------------------------------


def variant_view(variant: Variant) -> VariantOut:
    steps = [
        StepOut(
            step=index,
            delay=format_duration(dt.timedelta(seconds=stored["delay_seconds"])),
            template=stored.get("template"),
            subject=stored.get("subject"),
            html=stored.get("html"),
            text=stored.get("text"),
            discount_code=stored.get("discount_code"),
        )
        for index, stored in enumerate(variant.steps, start=1)
    ]
    return VariantOut(id=variant.id, name=variant.name, weight=variant.weight, steps=steps)


def ab_state(test: AbTest | None) -> AbTestState | None:
    settings = settings_of(test)
    if test is None or settings is None:
        return None
    return AbTestState(
        **settings.model_dump(),
        state=test.state,
        winner_variant_id=test.winner_variant_id,
        decided_at=test.decided_at,
        reason=test.reason,
    )


def campaign_view(
    campaign: Campaign, variants: list[Variant], test: AbTest | None = None
) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        description=campaign.description,
        source=campaign.source,
        products=campaign.products,
        languages=campaign.languages,
        countries=campaign.countries,
        status=campaign.status,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        priority=campaign.priority,
        send_window=SendWindow(**campaign.send_window) if campaign.send_window else None,
        variants=[variant_view(v) for v in variants],
        archived_at=campaign.archived_at,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        ab_test=ab_state(test),
        warnings=service.name_warnings(campaign.name),
    )


async def campaign_out(session: AsyncSession, campaign: Campaign) -> CampaignOut:
    """The campaign with its live variants and its A/B test."""
    variants = await service.live_variants(session, campaign.id)
    return campaign_view(campaign, variants, await get_test(session, campaign.id))


# -- the API's operations -------------------------------------------------------------------


async def create_campaign(
    session: AsyncSession, account: Account, body: CampaignIn, now: dt.datetime
) -> CampaignOut:
    return await campaign_out(session, await service.create_campaign(session, account, body, now))


async def list_campaigns(
    session: AsyncSession,
    account_id: str,
    filters: service.CampaignFilters,
    limit: int,
    cursor: str | None,
) -> Page[CampaignOut]:
    campaigns, next_cursor = await service.list_campaigns(
        session, account_id, filters, limit, cursor
    )
    ids = [c.id for c in campaigns]
    variants = await service.variants_by_campaign(session, ids)
    tests = {t.campaign_id: t for t in await tests_for(session, ids)}
    return Page[CampaignOut](
        items=[campaign_view(c, variants[c.id], tests.get(c.id)) for c in campaigns],
        next_cursor=next_cursor,
    )


async def show_campaign(session: AsyncSession, account_id: str, campaign_id: str) -> CampaignOut:
    return await campaign_out(session, await service.get_campaign(session, account_id, campaign_id))


async def update_campaign(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    body: CampaignUpdate,
    now: dt.datetime,
) -> CampaignOut:
    campaign = await service.get_campaign(session, account.id, campaign_id)
    await service.update_campaign(session, account, campaign, body, now)
    return await campaign_out(session, campaign)


async def archive_campaign(
    session: AsyncSession, account_id: str, campaign_id: str, now: dt.datetime
) -> CampaignOut:
    campaign = await service.get_campaign(session, account_id, campaign_id)
    await service.archive_campaign(session, campaign, now)
    return await campaign_out(session, campaign)


async def add_variant(
    session: AsyncSession, account: Account, campaign_id: str, body: VariantIn, now: dt.datetime
) -> VariantOut:
    campaign = await service.get_campaign(session, account.id, campaign_id)
    return variant_view(await service.add_variant(session, account, campaign, body, now))


async def update_variant(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    variant_id: str,
    body: VariantUpdate,
    now: dt.datetime,
) -> VariantOut:
    campaign = await service.get_campaign(session, account.id, campaign_id)
    variant = await service.get_variant(session, campaign, variant_id)
    await service.update_variant(session, account, campaign, variant, body, now)
    return variant_view(variant)


async def delete_variant(
    session: AsyncSession, account_id: str, campaign_id: str, variant_id: str, now: dt.datetime
) -> None:
    campaign = await service.get_campaign(session, account_id, campaign_id)
    variant = await service.get_variant(session, campaign, variant_id)
    await service.delete_variant(session, campaign, variant, now)
