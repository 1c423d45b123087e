"""Campaigns and their follow-up variants: validation and storage."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest import service as abtest
from leadflow.accounts.service import min_delay
from leadflow.campaigns.errors import (
    CampaignArchived,
    ConcurrentChange,
    LastVariant,
    NameTaken,
)
from leadflow.campaigns.schemas import CampaignIn, CampaignUpdate, StepIn, VariantIn, VariantUpdate
from leadflow.kit.db import get_owned
from leadflow.kit.durations import format_duration, parse_duration
from leadflow.kit.errors import AppError, FieldProblem, field_error, not_found, validation_problem
from leadflow.kit.ids import new_id
from leadflow.kit.pagination import keyset_page
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment
from leadflow.notifications import events
from leadflow.templates.catalog import TEMPLATE_SOURCE_TYPES, is_template_key
from leadflow.templates.isolation import RenderUnavailable, check_templates
from leadflow.vocabulary import CampaignStatus

_VAGUE_NAME = re.compile(
    r"^(promo|promotion|test|campaign|kampagne|new|untitled|temp|tmp|foo|bar|asdf|draft|copy|x+|[a-z])"
    r"[\s_-]*\d*$",
    re.IGNORECASE,
)


def name_warnings(name: str) -> list[str]:
    stripped = name.strip()
    if _VAGUE_NAME.match(stripped) or len(stripped) < 4 or stripped.isdigit():
        return [
            f"The name {stripped!r} says little about the campaign; a descriptive name such as "
            "'Abandoned carts DE - 10% off' helps your team find it later."
        ]
    return []


def _source_min_delay(account: Account, source: str) -> dt.timedelta:
    if source == "all":
        return min(min_delay(account, s) for s in TEMPLATE_SOURCE_TYPES)
    return min_delay(account, source)


async def _step_problems(
    account: Account, source: str, variants: list[tuple[list[StepIn], str]]
) -> list[FieldProblem]:
    """Problems with the steps of ``(steps, field prefix)`` pairs, custom templates included:
    those are checked (rendered for the sample lead within the rendering limits) in a
    template render process, all in one request."""
    problems: list[FieldProblem] = []
    templates: list[tuple[str, str, str]] = []
    for steps, prefix in variants:
        problems += _steps_problems(account, source, steps, prefix, templates)
    try:
        checked_templates = await check_templates(templates)
    except RenderUnavailable:
        raise rendering_unavailable() from None
    for checked in checked_templates:
        if checked.problem is not None:
            problems.append(FieldProblem(field=checked.key, message=checked.problem.message))
    return problems


def rendering_unavailable() -> AppError:
    """No template render process could start: the server's problem, retried later."""
    return AppError(
        503,
        "rendering_unavailable",
        "Templates cannot be rendered right now; retry later.",
        headers={"Retry-After": "5"},
    )


def _steps_problems(
    account: Account,
    source: str,
    steps: list[StepIn],
    prefix: str,
    templates: list[tuple[str, str, str]],
) -> list[FieldProblem]:
    """The problems seen without rendering; the custom templates to check go to
    ``templates`` as ``(field, part, source)``."""
    problems: list[FieldProblem] = []
    minimum = _source_min_delay(account, source)
    for index, step in enumerate(steps):
        where = f"{prefix}steps[{index}]"
        if index == 0 and parse_duration(step.delay) < minimum:
            problems.append(
                FieldProblem(
                    field=f"{where}.delay",
                    message=f"{step.delay} is below the account's minimum delay "
                    f"{format_duration(minimum)} for {source} leads",
                )
            )
        if step.template is not None and not is_template_key(step.template):
            problems.append(
                FieldProblem(
                    field=f"{where}.template",
                    message=f"unknown template {step.template!r}; see GET /v1/templates",
                )
            )
        for part in ("subject", "html", "text"):
            source_text = getattr(step, part)
            if source_text is not None:
                templates.append((f"{where}.{part}", part, source_text))
    return problems


def _stored_steps(steps: list[StepIn]) -> list[dict[str, Any]]:
    return [
        {
            "delay_seconds": int(parse_duration(step.delay).total_seconds()),
            "template": step.template,
            "subject": step.subject,
            "html": step.html,
            "text": step.text,
            "discount_code": step.discount_code,
        }
        for step in steps
    ]


def _invalid(problems: list[FieldProblem]) -> AppError:
    return validation_problem(problems)


async def _check_name_free(
    session: AsyncSession, account_id: str, name: str, except_id: str | None = None
) -> None:
    stmt = select(Campaign.id).where(
        Campaign.account_id == account_id,
        Campaign.archived_at.is_(None),
        func.lower(Campaign.name) == name.lower(),
    )
    if except_id:
        stmt = stmt.where(Campaign.id != except_id)
    if (await session.execute(stmt)).first() is not None:
        raise NameTaken(
            f"A campaign named {name!r} already exists.",
            message="already used by another campaign",
        )


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "live_lower_name" in str(exc.orig):  # the same name saved at the same instant
            raise NameTaken(
                "Another campaign with this name was just created.",
                message="already used by another campaign",
            ) from None
        raise ConcurrentChange from None


def _new_variant(
    account_id: str,
    campaign_id: str,
    body: VariantIn,
    now: dt.datetime,
    variant_id: str | None = None,
) -> Variant:
    return Variant(
        id=variant_id or new_id("var"),
        account_id=account_id,
        campaign_id=campaign_id,
        name=body.name,
        weight=body.weight,
        steps=_stored_steps(body.steps),
        created_at=now,
        updated_at=now,
    )


async def create_campaign(
    session: AsyncSession, account: Account, body: CampaignIn, now: dt.datetime
) -> Campaign:
    problems = await _step_problems(
        account,
        body.source,
        [(variant.steps, f"variants[{index}].") for index, variant in enumerate(body.variants)],
    )
    names = [v.name for v in body.variants]
    if len(set(names)) != len(names):
        problems.append(FieldProblem(field="variants", message="variant names must be unique"))
    if body.status == CampaignStatus.ACTIVE and not body.variants:
        problems.append(_needs_variant())
    if problems:
        raise _invalid(problems)
    await _check_name_free(session, account.id, body.name)
    campaign = Campaign(
        id=new_id("cmp"),
        account_id=account.id,
        name=body.name.strip(),
        description=body.description,
        source=body.source,
        products=body.products,
        languages=body.languages,
        countries=body.countries,
        status=body.status,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        priority=body.priority,
        send_window=body.send_window.model_dump() if body.send_window else None,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    # Variants are listed by (created_at, id) and all share `now` here: ids that sort in the
    # order given keep that order (the "first variant", the A/B split) instead of a random one.
    variant_ids = sorted(new_id("var") for _ in body.variants)
    for variant_id, variant in zip(variant_ids, body.variants, strict=True):
        session.add(_new_variant(account.id, campaign.id, variant, now, variant_id))
    await _flush(session)
    if body.ab_test is not None:
        await abtest.save_settings(session, campaign, body.ab_test, variant_ids, now)
    if campaign.status == CampaignStatus.ACTIVE:
        await events.campaign_status_changed(session, campaign, now)
    return campaign


def _needs_variant() -> FieldProblem:
    return FieldProblem(
        field="status", message="add at least one follow-up variant before activating"
    )


async def get_campaign(session: AsyncSession, account_id: str, campaign_id: str) -> Campaign:
    return await get_owned(session, Campaign, account_id, campaign_id, "campaign")


def _live(campaign: Campaign) -> None:
    if campaign.archived_at is not None:
        raise CampaignArchived


async def live_variants(session: AsyncSession, campaign_id: str) -> list[Variant]:
    return list((await session.execute(Variant.live_of(campaign_id))).scalars())


async def update_campaign(
    session: AsyncSession,
    account: Account,
    campaign: Campaign,
    body: CampaignUpdate,
    now: dt.datetime,
) -> Campaign:
    _live(campaign)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise field_error("name", "must not be null")
    for required in ("source", "status", "products", "languages", "countries", "priority"):
        if required in changes and changes[required] is None:
            raise field_error(required, "must not be null")
    starts = changes.get("starts_at", campaign.starts_at)
    ends = changes.get("ends_at", campaign.ends_at)
    if starts and ends and ends <= starts:
        raise field_error("ends_at", "must be after starts_at")
    variants = await live_variants(session, campaign.id)
    if changes.get("status") == CampaignStatus.ACTIVE and not variants:
        raise _invalid([_needs_variant()])
    new_source = changes.get("source", campaign.source)
    if new_source != campaign.source:
        minimum = _source_min_delay(account, new_source)
        for variant in variants:
            if dt.timedelta(seconds=variant.steps[0]["delay_seconds"]) < minimum:
                raise field_error(
                    "source",
                    f"variant {variant.name!r} starts after less than the minimum delay "
                    f"{format_duration(minimum)} for {new_source} leads",
                )
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        await _check_name_free(session, account.id, changes["name"], except_id=campaign.id)
    if "ab_test" in changes:
        await abtest.save_settings(session, campaign, body.ab_test, [v.id for v in variants], now)
        del changes["ab_test"]
    was_status = campaign.status
    for field, value in changes.items():
        if field == "send_window":
            value = body.send_window.model_dump() if body.send_window else None
        setattr(campaign, field, value)
    campaign.updated_at = now
    await _flush(session)
    if campaign.status != was_status:
        await events.campaign_status_changed(session, campaign, now)
    return campaign


async def archive_campaign(session: AsyncSession, campaign: Campaign, now: dt.datetime) -> Campaign:
    if campaign.archived_at is None:
        was_active = campaign.status == CampaignStatus.ACTIVE
        campaign.archived_at = now
        campaign.status = CampaignStatus.INACTIVE
        campaign.updated_at = now
        await session.flush()
        if was_active:
            await events.campaign_status_changed(session, campaign, now)
    return campaign


async def add_variant(
    session: AsyncSession, account: Account, campaign: Campaign, body: VariantIn, now: dt.datetime
) -> Variant:
    _live(campaign)
    problems = await _step_problems(account, campaign.source, [(body.steps, "")])
    if problems:
        raise _invalid(problems)
    if any(v.name == body.name for v in await live_variants(session, campaign.id)):
        raise NameTaken(
            f"The campaign already has a variant named {body.name!r}.",
            message="already used in this campaign",
        )
    variant = _new_variant(account.id, campaign.id, body, now)
    session.add(variant)
    campaign.updated_at = now
    await _flush(session)
    return variant


async def get_variant(session: AsyncSession, campaign: Campaign, variant_id: str) -> Variant:
    variant = (
        await session.execute(
            select(Variant).where(
                Variant.campaign_id == campaign.id,
                Variant.id == variant_id,
                Variant.archived_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if variant is None:
        raise not_found("variant")
    return variant


async def update_variant(
    session: AsyncSession,
    account: Account,
    campaign: Campaign,
    variant: Variant,
    body: VariantUpdate,
    now: dt.datetime,
) -> Variant:
    """Edits apply to follow-ups not sent yet; sent ones keep what was sent."""
    _live(campaign)
    if body.steps is not None:
        problems = await _step_problems(account, campaign.source, [(body.steps, "")])
        if problems:
            raise _invalid(problems)
        variant.steps = _stored_steps(body.steps)
    if body.name is not None and body.name != variant.name:
        if any(v.name == body.name for v in await live_variants(session, campaign.id)):
            raise field_error("name", "already used in this campaign", status=409)
        variant.name = body.name
    if body.weight is not None:
        variant.weight = body.weight
    variant.updated_at = campaign.updated_at = now
    await _flush(session)
    return variant


async def delete_variant(
    session: AsyncSession, campaign: Campaign, variant: Variant, now: dt.datetime
) -> None:
    """Archives the variant: new leads stop going to it; its in-flight leads are stopped."""
    _live(campaign)
    variants = await live_variants(session, campaign.id)
    if len(variants) == 1 and campaign.status == CampaignStatus.ACTIVE:
        raise LastVariant
    used = (
        await session.execute(
            select(Enrollment.id).where(Enrollment.variant_id == variant.id).limit(1)
        )
    ).first()
    if used is None:
        await session.delete(variant)
    else:
        variant.archived_at = now
    campaign.updated_at = now
    await session.flush()


@dataclass(frozen=True)
class CampaignFilters:
    include_archived: bool = False
    status: str | None = None
    source: str | None = None
    name: str | None = None  # a part of the name, any case


async def list_campaigns(
    session: AsyncSession, account_id: str, filters: CampaignFilters, limit: int, cursor: str | None
) -> tuple[list[Campaign], str | None]:
    stmt = select(Campaign).where(Campaign.account_id == account_id)
    if not filters.include_archived:
        stmt = stmt.where(Campaign.archived_at.is_(None))
    if filters.status is not None:
        stmt = stmt.where(Campaign.status == filters.status)
    if filters.source is not None:
        stmt = stmt.where(Campaign.source == filters.source)
    if filters.name:
        stmt = stmt.where(func.lower(Campaign.name).contains(filters.name.lower(), autoescape=True))
    return await keyset_page(session, stmt, (Campaign.id,), limit=limit, cursor=cursor)


async def variants_by_campaign(
    session: AsyncSession, campaign_ids: list[str]
) -> dict[str, list[Variant]]:
    out: dict[str, list[Variant]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return out
    rows = await session.execute(
        select(Variant)
        .where(Variant.campaign_id.in_(campaign_ids), Variant.archived_at.is_(None))
        .order_by(Variant.created_at, Variant.id)
    )
    for variant in rows.scalars():
        out[variant.campaign_id].append(variant)
    return out
