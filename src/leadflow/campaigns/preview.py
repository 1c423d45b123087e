"""Rendering a campaign's follow-up for a sample or real lead, and the predefined templates
a step may use."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from jinja2 import TemplateError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.campaigns import service
from leadflow.campaigns.errors import NoVariants, TemplateNotRenderable
from leadflow.campaigns.schemas import PreviewIn, PreviewOut, TemplateOut
from leadflow.kit.errors import field_error, not_found
from leadflow.kit.pagination import Page
from leadflow.leads.service import get_lead
from leadflow.models.accounts import Account
from leadflow.models.leads import Lead
from leadflow.templates.catalog import (
    TEMPLATE_VARIABLES,
    languages_for,
    resolve_language,
    template_keys,
)
from leadflow.templates.compose import lead_context
from leadflow.templates.isolation import RenderUnavailable, render_step_bounded
from leadflow.vocabulary import LeadStatus


def sample_lead(account_id: str, language: str | None, now: dt.datetime) -> Lead:
    """A lead that is never stored: what a preview renders without a real one."""
    return Lead(
        id="lead_sample",
        account_id=account_id,
        source_type="abandoned_checkout",
        reference="sample",
        status=LeadStatus.OPEN,
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


async def preview(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    body: PreviewIn,
    base_url: str,
    now: dt.datetime,
) -> PreviewOut:
    """Render step ``body.step`` of a variant (default: the first) for ``body.lead_id`` or
    the sample lead; nothing is sent or stored."""
    campaign = await service.get_campaign(session, account.id, campaign_id)
    variants = await service.live_variants(session, campaign.id)
    if body.variant_id:
        variant = next((v for v in variants if v.id == body.variant_id), None)
        if variant is None:
            raise not_found("variant")
    elif variants:
        variant = variants[0]
    else:
        raise NoVariants
    if body.step > len(variant.steps):
        raise field_error("step", f"the variant has {len(variant.steps)} step(s)")
    if body.lead_id:
        lead = await get_lead(session, account.id, body.lead_id)
        if lead is None:
            raise not_found("lead")
    else:
        lead = sample_lead(account.id, body.language, now)
    context = lead_context(base_url, account, lead, None)
    stored = variant.steps[body.step - 1]
    try:
        # A merchant's template renders in a render process, within the rendering limits.
        rendered = await render_step_bounded(stored, context, lead.language)
    except RenderUnavailable:
        raise service.rendering_unavailable() from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # A custom template valid for the sample lead may still fail for a real one
        # (``{{ first_name.upper() }}`` without a first name): say so, do not crash.
        raise TemplateNotRenderable(
            f"Step {body.step} of variant {variant.name!r} cannot be rendered for this lead: {exc}"
        ) from None
    language = resolve_language(lead.language) if stored.get("template") else (lead.language or "")
    return PreviewOut(
        to=lead.email,
        language=language,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
    )


def template_page() -> Page[TemplateOut]:
    """Every predefined template: its key, the languages it is written in, its variables."""
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
