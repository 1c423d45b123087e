"""Dashboard figures: value, follow-ups and conversion, overall, per campaign, step, variant."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from leadflow.api.deps import ClockDep, CurrentAccount, DatabaseDep, SessionDep, SettingsDep
from leadflow.kit.errors import error_responses
from leadflow.kit.times import DAY_BOUND, DayOrDateTime, bound
from leadflow.stats import service
from leadflow.stats.schemas import CampaignStatsOut, Figures, StatsOut

router = APIRouter(tags=["stats"])

Granularity = Literal["day", "hour"]

From = Annotated[
    DayOrDateTime | None,
    Query(alias="from", description=f"{DAY_BOUND}. Inclusive, rounded down to the hour."),
]
To = Annotated[
    DayOrDateTime | None,
    Query(
        description=f"{DAY_BOUND} (up to the end of that day). Exclusive. Default: the end of "
        "the current hour."
    ),
]
Rates = Annotated[
    str | None,
    Query(
        description="Convert values to the account's default currency: `USD:0.92,GBP:1.17` "
        "(units of the default currency per unit). No network calls are made."
    ),
]


@router.get(
    "/v1/stats",
    summary="Value, follow-ups and conversion: overall, per campaign and per step",
    response_model=StatsOut,
    response_model_by_alias=True,
    responses=error_responses(401, 404, 422),  # 404: campaign_id is not the account's
)
async def stats(
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    from_: From = None,
    to: To = None,
    campaign_id: str | None = None,
    granularity: Granularity = "day",
    rates: Rates = None,
) -> StatsOut:
    """Counted by the hour (UTC): a follow-up counts when sent, a conversion when it happened.
    Conversions without a follow-up before them count neither as targeted nor as converted."""
    return await service.overall_stats(
        session,
        account,
        start=bound(from_, account.timezone, end=False),
        end=bound(to, account.timezone, end=True),
        granularity=granularity,
        campaign_id=campaign_id,
        rates=rates,
        now=clock.now(),
    )


@router.get(
    "/v1/campaigns/{campaign_id}/stats",
    summary="A campaign's figures per variant and step",
    response_model=CampaignStatsOut,
    response_model_by_alias=True,
    responses=error_responses(401, 404, 422),
    tags=["campaigns"],
)
async def campaign_stats(
    campaign_id: str,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    from_: From = None,
    to: To = None,
    granularity: Granularity = "day",
    rates: Rates = None,
) -> CampaignStatsOut:
    return await service.campaign_stats(
        session,
        account,
        campaign_id,
        start=bound(from_, account.timezone, end=False),
        end=bound(to, account.timezone, end=True),
        granularity=granularity,
        rates=rates,
        now=clock.now(),
    )


@router.get(
    "/v1/stats/stream",
    summary="Server-sent events with the overall figures whenever they change",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: stats` messages"},
        **error_responses(401, 404, 422),  # 404: campaign_id is not the account's
    },
)
async def stats_stream(
    request: Request,
    account: CurrentAccount,
    session: SessionDep,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    from_: From = None,
    campaign_id: str | None = None,
) -> StreamingResponse:
    """Sends `event: stats` (data: the `overall` figures of `GET /v1/stats` from `from`,
    default the last 30 days, up to now) at once and whenever they change, checking every
    LEADFLOW_STATS_STREAM_INTERVAL_SECONDS, and a `: heartbeat` comment every 15 s."""
    updates = await service.figures_stream(
        session,
        db,
        clock,
        account,
        start=bound(from_, account.timezone, end=False),
        campaign_id=campaign_id,
        interval=settings.stats_stream_interval_seconds,
        heartbeat=settings.stats_stream_heartbeat_seconds,
        disconnected=request.is_disconnected,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse(updates), media_type="text/event-stream", headers=headers)


async def _sse(updates: AsyncGenerator[Figures | None, None]) -> AsyncIterator[str]:
    """Server-sent events: `event: stats` for figures, a comment for a heartbeat."""
    yield "retry: 5000\n\n"
    async with aclosing(updates):
        async for figures in updates:
            if figures is None:
                yield ": heartbeat\n\n"
            else:
                yield f"event: stats\ndata: {figures.model_dump_json()}\n\n"
