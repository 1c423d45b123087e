from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep, SettingsDep
from leadflow.campaigns import preview as previews
from leadflow.campaigns import views
from leadflow.campaigns.schemas import (
    BackfillIn,
    BackfillJobOut,
    CampaignIn,
    CampaignOut,
    CampaignSource,
    CampaignUpdate,
    PreviewIn,
    PreviewOut,
    TemplateOut,
    VariantIn,
    VariantOut,
    VariantUpdate,
)
from leadflow.campaigns.service import CampaignFilters
from leadflow.kit.errors import error_responses
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.lifecycle import backfill
from leadflow.vocabulary import CampaignStatus

router = APIRouter(tags=["campaigns"])


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
    return await views.create_campaign(session, account, body, clock.now())


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
    status: CampaignStatus | None = None,
    source: Annotated[
        CampaignSource | None,
        Query(description="Campaigns of this source (`all`: those that target every source)."),
    ] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="A part of the name, in any case.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[CampaignOut]:
    """Oldest first. The filters combine; `source=all` matches campaigns whose source is `all`."""
    filters = CampaignFilters(
        include_archived=include_archived,
        status=status.value if status else None,
        source=source,
        name=name,
    )
    return await views.list_campaigns(session, account.id, filters, limit, cursor)


@router.get(
    "/v1/campaigns/{campaign_id}",
    summary="Get a campaign",
    response_model=CampaignOut,
    responses=error_responses(401, 404),
)
async def get_campaign(
    campaign_id: str, account: CurrentAccount, session: SessionDep
) -> CampaignOut:
    return await views.show_campaign(session, account.id, campaign_id)


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
    return await views.update_campaign(session, account, campaign_id, body, clock.now())


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
    return await views.archive_campaign(session, account.id, campaign_id, clock.now())


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
    return await views.add_variant(session, account, campaign_id, body, clock.now())


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
    return await views.update_variant(session, account, campaign_id, variant_id, body, clock.now())


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
    await views.delete_variant(session, account.id, campaign_id, variant_id, clock.now())
    return Response(status_code=204)


@router.post(
    "/v1/campaigns/{campaign_id}/backfill",
    summary="Enroll open leads captured before the campaign ran",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BackfillJobOut,
    responses={
        **error_responses(401, 404, 409, 422),
        202: {
            "description": "Queued; follow it at the URL in `Location`.",
            "headers": {
                "Location": {
                    "description": "`/v1/campaigns/{campaign_id}/backfills/{id}`",
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
async def backfill_campaign(
    campaign_id: str,
    body: BackfillIn,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
) -> BackfillJobOut:
    """Queues a backfill of open leads that match the filters and are in no campaign yet,
    and answers at once (202). A worker (`leadflow worker`, or the one inside `leadflow
    serve`) enrolls them in chunks of 5,000 leads, each committed on its own, so a million
    leads take minutes and progress shows at the URL in `Location`. The first follow-up still
    waits for its delay after capture (so old leads go out at once). Refused (409) while the
    campaign is not active or has ended, and while another backfill of it is queued or
    running; a backfill whose campaign stops running meanwhile ends `stopped`."""
    job = await backfill.start_backfill(
        session, account, campaign_id, body.captured_from, clock.now()
    )
    response.headers["Location"] = f"/v1/campaigns/{job.campaign_id}/backfills/{job.id}"
    return BackfillJobOut.model_validate(job)


@router.get(
    "/v1/campaigns/{campaign_id}/backfills/{backfill_id}",
    summary="A backfill's status and progress",
    response_model=BackfillJobOut,
    responses=error_responses(401, 404),
)
async def get_backfill(
    campaign_id: str, backfill_id: str, account: CurrentAccount, session: SessionDep
) -> BackfillJobOut:
    """Counts grow as each chunk of leads commits; `finished_at` is set once it is over."""
    job = await backfill.get_backfill(session, account.id, campaign_id, backfill_id)
    return BackfillJobOut.model_validate(job)


@router.post(
    "/v1/campaigns/{campaign_id}/preview",
    summary="Render a follow-up for a sample or real lead",
    response_model=PreviewOut,
    responses=error_responses(401, 404, 409, 422),
)
async def preview(
    campaign_id: str,
    body: PreviewIn,
    account: CurrentAccount,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> PreviewOut:
    return await previews.preview(
        session, account, campaign_id, body, settings.base_url, clock.now()
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
    return previews.template_page()
