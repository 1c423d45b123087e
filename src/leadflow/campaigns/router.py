from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from jinja2 import TemplateError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.models import AbTest
from leadflow.abtest.schemas import AbTestState
from leadflow.abtest.service import get_test, settings_of, tests_for
from leadflow.campaigns import service
from leadflow.campaigns.enrollment import backfill
from leadflow.campaigns.models import Campaign, Variant
from leadflow.campaigns.schemas import (
    BackfillIn,
    BackfillOut,
    CampaignIn,
    CampaignOut,
    CampaignUpdate,
    PreviewIn,
    PreviewOut,
    SendWindow,
    StepOut,
    TemplateOut,
    VariantIn,
    VariantOut,
    VariantUpdate,
)
from leadflow.deps import ClockDep, CurrentAccount, SessionDep, SettingsDep
from leadflow.dispatch.compose import lead_context
from leadflow.dispatch.render import render_step
from leadflow.dispatch.templates.catalog import (
    TEMPLATE_VARIABLES,
    languages_for,
    resolve_language,
    template_keys,
)
from leadflow.kit.durations import format_duration
from leadflow.kit.errors import AppError, error_responses, field_error, not_found
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.leads.models import Lead

router = APIRouter(tags=["campaigns"])


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


async def _view(session: AsyncSession, campaign: Campaign) -> CampaignOut:
    variants = await service.live_variants(session, campaign.id)
    return campaign_view(campaign, variants, await get_test(session, campaign.id))


@router.post(
    "/v1/campaigns",
    summary="Create a campaign (step 1, optionally with its follow-ups)",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignOut,
    responses=error_responses(401, 409, 422),
)
async def create_campaign(
    body: CampaignIn, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> CampaignOut:
    """Campaigns start `inactive` unless `status` says otherwise. A vague name such as
    `promo1` is accepted with a warning in `warnings`."""
    campaign = await service.create_campaign(session, account, body, clock.now())
    return await _view(session, campaign)


@router.get(
    "/v1/campaigns",
    summary="List campaigns",
    response_model=Page[CampaignOut],
    responses=error_responses(401, 422),
)
async def list_campaigns(
    account: CurrentAccount,
    session: SessionDep,
    include_archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CampaignOut]:
    campaigns, next_cursor = await service.list_campaigns(
        session, account.id, include_archived, limit, cursor
    )
    ids = [c.id for c in campaigns]
    variants = await service.variants_by_campaign(session, ids)
    tests = {t.campaign_id: t for t in await tests_for(session, ids)}
    return Page[CampaignOut](
        items=[campaign_view(c, variants[c.id], tests.get(c.id)) for c in campaigns],
        next_cursor=next_cursor,
    )


@router.get(
    "/v1/campaigns/{campaign_id}",
    summary="Get a campaign",
    response_model=CampaignOut,
    responses=error_responses(401, 404),
)
async def get_campaign(
    campaign_id: str, account: CurrentAccount, session: SessionDep
) -> CampaignOut:
    return await _view(session, await service.get_campaign(session, account.id, campaign_id))


@router.patch(
    "/v1/campaigns/{campaign_id}",
    summary="Change a campaign's step-1 settings or switch it on/off",
    response_model=CampaignOut,
    responses=error_responses(401, 404, 409, 422),
)
async def update_campaign(
    campaign_id: str,
    body: CampaignUpdate,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> CampaignOut:
    campaign = await service.get_campaign(session, account.id, campaign_id)
    await service.update_campaign(session, account, campaign, body, clock.now())
    return await _view(session, campaign)


@router.delete(
    "/v1/campaigns/{campaign_id}",
    summary="Archive a campaign",
    response_model=CampaignOut,
    responses=error_responses(401, 404),
)
async def archive_campaign(
    campaign_id: str, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> CampaignOut:
    """Archiving keeps the campaign and its history (messages, conversions) but stops it:
    its leads receive no further follow-ups."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    await service.archive_campaign(session, campaign, clock.now())
    return await _view(session, campaign)


@router.post(
    "/v1/campaigns/{campaign_id}/variants",
    summary="Add a set of follow-ups (a test variant)",
    status_code=status.HTTP_201_CREATED,
    response_model=VariantOut,
    responses=error_responses(401, 404, 409, 422),
)
async def add_variant(
    campaign_id: str,
    body: VariantIn,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> VariantOut:
    """With two or more variants the campaign is an A/B test: new leads are split by a
    deterministic hash of the lead id, in proportion to the weights."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    return variant_view(await service.add_variant(session, account, campaign, body, clock.now()))


@router.patch(
    "/v1/campaigns/{campaign_id}/variants/{variant_id}",
    summary="Edit a variant's follow-ups",
    response_model=VariantOut,
    responses=error_responses(401, 404, 409, 422),
)
async def update_variant(
    campaign_id: str,
    variant_id: str,
    body: VariantUpdate,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> VariantOut:
    """Edits affect only follow-ups not sent yet."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    variant = await service.get_variant(session, campaign, variant_id)
    await service.update_variant(session, account, campaign, variant, body, clock.now())
    return variant_view(variant)


@router.delete(
    "/v1/campaigns/{campaign_id}/variants/{variant_id}",
    summary="Remove a variant",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404, 409),
)
async def delete_variant(
    campaign_id: str,
    variant_id: str,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """New leads stop going to it; leads in its sequence get no further follow-ups."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    variant = await service.get_variant(session, campaign, variant_id)
    await service.delete_variant(session, campaign, variant, clock.now())
    return Response(status_code=204)


@router.post(
    "/v1/campaigns/{campaign_id}/backfill",
    summary="Enroll open leads captured before the campaign ran",
    response_model=BackfillOut,
    responses=error_responses(401, 404, 409, 422),
)
async def backfill_campaign(
    campaign_id: str,
    body: BackfillIn,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> BackfillOut:
    """Takes open leads that match the filters and are in no campaign yet. The first
    follow-up still waits for its delay after capture (so old leads go out at once)."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    if campaign.status != "active" or campaign.archived_at is not None:
        raise AppError(409, "campaign_inactive", "Activate the campaign before backfilling.")
    if campaign.ends_at is not None and campaign.ends_at <= clock.now():
        # Its enrollments would be stopped at once, and a lead joins one campaign only.
        raise AppError(409, "campaign_ended", "The campaign has ended: nothing to backfill.")
    count = await backfill(session, account, campaign, body.captured_from, clock.now())
    return BackfillOut(enrolled=count)


def _sample_lead(account_id: str, language: str | None, now: dt.datetime) -> Lead:
    return Lead(
        id="lead_sample",
        account_id=account_id,
        source_type="abandoned_checkout",
        reference="sample",
        status="open",
        email="jane.doe@example.com",
        first_name="Jane",
        last_name="Doe",
        language=language or "en",
        products=[{"id": "sku-1", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}],
        amount=Decimal("49.00"),
        currency="EUR",
        recovery_url="https://shop.example.com/checkout/sample",
        attributes={},
        captured_at=now,
    )


@router.post(
    "/v1/campaigns/{campaign_id}/preview",
    summary="Render a follow-up for a sample or real lead",
    response_model=PreviewOut,
    responses=error_responses(401, 404, 422),
)
async def preview(
    campaign_id: str,
    body: PreviewIn,
    account: CurrentAccount,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> PreviewOut:
    campaign = await service.get_campaign(session, account.id, campaign_id)
    variants = await service.live_variants(session, campaign.id)
    if body.variant_id:
        variant = next((v for v in variants if v.id == body.variant_id), None)
        if variant is None:
            raise not_found("variant")
    elif variants:
        variant = variants[0]
    else:
        raise AppError(409, "no_variants", "The campaign has no follow-ups yet.")
    if body.step > len(variant.steps):
        raise field_error("step", f"the variant has {len(variant.steps)} step(s)")
    if body.lead_id:
        lead = await session.get(Lead, body.lead_id)
        if lead is None or lead.account_id != account.id:
            raise not_found("lead")
    else:
        lead = _sample_lead(account.id, body.language, clock.now())
    context = lead_context(settings.base_url, account, lead, None)
    try:
        rendered = render_step(variant.steps[body.step - 1], context, lead.language)
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # A custom template valid for the sample lead may still fail for a real one
        # (``{{ first_name.upper() }}`` without a first name): say so, do not crash.
        raise AppError(
            422,
            "template_error",
            f"Step {body.step} of variant {variant.name!r} cannot be rendered for this lead: {exc}",
        ) from None
    stored = variant.steps[body.step - 1]
    language = resolve_language(lead.language) if stored.get("template") else (lead.language or "")
    return PreviewOut(
        to=lead.email,
        language=language,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
    )


@router.get(
    "/v1/templates",
    tags=["templates"],
    summary="List the predefined follow-up templates",
    response_model=Page[TemplateOut],
    responses=error_responses(401),
)
async def list_templates(account: CurrentAccount) -> Page[TemplateOut]:
    """Keys such as `abandoned_checkout/1`, the languages each is written in (the lead's
    language is used, falling back to English) and the variables templates may use."""
    items = []
    for key in template_keys():
        source_type, step = key.split("/")
        items.append(
            TemplateOut(
                key=key,
                source_type=source_type,
                step=int(step),
                languages=languages_for(key),
                variables=list(TEMPLATE_VARIABLES),
            )
        )
    return Page[TemplateOut](items=items, next_cursor=None)
