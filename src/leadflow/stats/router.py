"""Dashboard figures: value, follow-ups and conversion, overall, per campaign, step, variant."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.campaigns.models import Campaign, Variant
from leadflow.campaigns.service import get_campaign
from leadflow.deps import ClockDep, CurrentAccount, DatabaseDep, SessionDep, SettingsDep
from leadflow.kit.codes import format_money, normalize_currency
from leadflow.kit.errors import error_responses, field_error
from leadflow.kit.times import UtcDateTime
from leadflow.stats.schemas import (
    CampaignFigures,
    CampaignStatsOut,
    ConvertedValue,
    Figures,
    SeriesPoint,
    StatsOut,
    StepFigures,
    VariantFigures,
)
from leadflow.stats.service import (
    CounterSum,
    HourSum,
    Tally,
    bucket_start,
    buckets,
    hour_of,
    per_bucket,
    tally,
    totals,
)

router = APIRouter(tags=["stats"])

Granularity = Literal["day", "hour"]
MAX_BUCKETS = 2000
MAX_RATE = Decimal(1_000_000)
DEFAULT_RANGE = dt.timedelta(days=30)


def parse_rates(text: str | None, target: str) -> dict[str, Decimal] | None:
    """``"USD:0.92,GBP:1.17"``: how many units of ``target`` one unit of each currency is."""
    if not text:
        return None
    rates = {target: Decimal(1)}
    for part in text.split(","):
        code, _, value = part.partition(":")
        try:
            currency = normalize_currency(code)
            rate = Decimal(value.strip())
        except (ValueError, InvalidOperation):
            raise field_error("rates", f"{part!r} is not CURRENCY:RATE, e.g. USD:0.92") from None
        if not rate.is_finite() or not 0 < rate <= MAX_RATE:
            raise field_error("rates", f"the rate for {currency} must be between 0 and {MAX_RATE}")
        rates[currency] = rate
    return rates


class _View:
    def __init__(self, target: str, rates: dict[str, Decimal] | None) -> None:
        self.target = target
        self.rates = rates

    def converted(self, value: dict[str, Decimal]) -> ConvertedValue | None:
        if self.rates is None:
            return None
        missing = sorted(c for c in value if c not in self.rates)
        if missing:
            raise field_error("rates", f"no rate given for {', '.join(missing)}")
        total = sum((amount * self.rates[c] for c, amount in value.items()), Decimal(0))
        return ConvertedValue(currency=self.target, amount=format_money(total, self.target) or "0")

    def figures(self, t: Tally) -> dict[str, object]:
        return {
            "value": {c: format_money(a, c) or "0" for c, a in sorted(t.value.items())},
            "value_converted": self.converted(t.value),
            "followups_sent": t.followups_sent,
            "targeted_leads": t.targeted_leads,
            "converted_leads": t.converted_leads,
            "conversion_rate": t.conversion_rate,
        }

    def steps(self, rows: Iterable[CounterSum]) -> list[StepFigures]:
        by_step: dict[int, list[CounterSum]] = defaultdict(list)
        for row in rows:
            by_step[row.step].append(row)
        out = []
        for step in (1, 2, 3):
            t = tally(by_step.get(step, []))
            # Each lead gets each step at most once: a step's targeted leads are its sends.
            t.targeted_leads = t.followups_sent
            out.append(StepFigures(step=step, **self.figures(t)))
        return out

    def series(
        self, rows: Iterable[HourSum], start: dt.datetime, end: dt.datetime, granularity: str
    ) -> list[SeriesPoint]:
        grouped: dict[dt.datetime, list[HourSum]] = defaultdict(list)
        for row in rows:
            grouped[bucket_start(row.hour, granularity)].append(row)
        points = []
        for when in buckets(start, end, granularity):
            t = tally(grouped.get(when, []))
            points.append(
                SeriesPoint(
                    start=when,
                    followups_sent=t.followups_sent,
                    targeted_leads=t.targeted_leads,
                    converted_leads=t.converted_leads,
                    value={c: format_money(a, c) or "0" for c, a in sorted(t.value.items())},
                )
            )
        return points


def _group(
    rows: Iterable[CounterSum], key: Callable[[CounterSum], str]
) -> dict[str, list[CounterSum]]:
    out: dict[str, list[CounterSum]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


def _range(
    start: dt.datetime | None, end: dt.datetime | None, granularity: str, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    end = end or hour_of(now) + dt.timedelta(hours=1)
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise field_error("from", "must be before `to`")
    # Counted, not listed: a range of centuries must be refused without building it.
    step = dt.timedelta(hours=1) if granularity == "hour" else dt.timedelta(days=1)
    if (end - start) / step > MAX_BUCKETS:
        raise field_error(
            "granularity", f"more than {MAX_BUCKETS} buckets; use day or a shorter range"
        )
    return start, end


async def _names(
    session: AsyncSession, model: type[Campaign] | type[Variant], ids: set[str]
) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    return {row_id: name for row_id, name in rows}


From = Annotated[
    UtcDateTime | None, Query(alias="from", description="Inclusive, rounded down to the hour.")
]
To = Annotated[
    UtcDateTime | None, Query(description="Exclusive. Default: the end of the current hour.")
]
Rates = Annotated[
    str | None,
    Query(
        description="Convert values to the account's default currency: `USD:0.92,GBP:1.17` "
        "(units of the default currency per unit). No network calls are made."
    ),
]


async def overall_stats(
    session: AsyncSession,
    account: Account,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
    campaign_id: str | None,
    rates: dict[str, Decimal] | None,
) -> StatsOut:
    view = _View(account.default_currency, rates)
    rows = await totals(session, account.id, start, end, campaign_id)
    hours = await per_bucket(session, account.id, start, end, granularity, campaign_id)
    by_campaign = _group(rows, lambda r: r.campaign_id)
    names = await _names(session, Campaign, set(by_campaign))
    campaigns = [
        CampaignFigures(
            campaign_id=cid,
            name=names.get(cid),
            steps=view.steps(crows),
            **view.figures(tally(crows)),
        )
        for cid, crows in sorted(by_campaign.items())
    ]
    return StatsOut(
        from_=start,
        to=end,
        granularity=granularity,
        overall=Figures(**view.figures(tally(rows))),
        steps=view.steps(rows),
        campaigns=campaigns,
        series=view.series(hours, start, end, granularity),
    )


@router.get(
    "/v1/stats",
    summary="Value, follow-ups and conversion: overall, per campaign and per step",
    response_model=StatsOut,
    response_model_by_alias=True,
    responses=error_responses(401, 422),
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
    start, end = _range(from_, to, granularity, clock.now())
    if campaign_id is not None:
        await get_campaign(session, account.id, campaign_id)  # 404 for other accounts
    return await overall_stats(
        session,
        account,
        start,
        end,
        granularity,
        campaign_id,
        parse_rates(rates, account.default_currency),
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
    campaign = await get_campaign(session, account.id, campaign_id)
    start, end = _range(from_, to, granularity, clock.now())
    view = _View(account.default_currency, parse_rates(rates, account.default_currency))
    rows = await totals(session, account.id, start, end, campaign.id)
    hours = await per_bucket(session, account.id, start, end, granularity, campaign.id)
    by_variant = _group(rows, lambda r: r.variant_id)
    live = list(
        (await session.execute(select(Variant).where(Variant.campaign_id == campaign.id))).scalars()
    )
    names = {v.id: v.name for v in live}
    variant_ids = sorted(set(by_variant) | {v.id for v in live if v.archived_at is None})
    variants = [
        VariantFigures(
            variant_id=vid,
            name=names.get(vid),
            steps=view.steps(by_variant.get(vid, [])),
            **view.figures(tally(by_variant.get(vid, []))),
        )
        for vid in variant_ids
    ]
    return CampaignStatsOut(
        campaign_id=campaign.id,
        name=campaign.name,
        from_=start,
        to=end,
        granularity=granularity,
        overall=Figures(**view.figures(tally(rows))),
        steps=view.steps(rows),
        variants=variants,
        series=view.series(hours, start, end, granularity),
    )


@router.get(
    "/v1/stats/stream",
    summary="Server-sent events with the overall figures whenever they change",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: stats` messages"},
        **error_responses(401, 422),
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
    if campaign_id is not None:
        await get_campaign(session, account.id, campaign_id)  # 404 for other accounts
    account_id = account.id
    interval = settings.stats_stream_interval_seconds
    heartbeat_every = settings.stats_stream_heartbeat_seconds

    async def figures() -> str:
        async with db.session() as session:
            current = await session.get_one(Account, account_id)
            end = hour_of(clock.now()) + dt.timedelta(hours=1)
            start = from_ or end - DEFAULT_RANGE
            rows = await totals(session, account_id, start, end, campaign_id)
            view = _View(current.default_currency, None)
            return Figures(**view.figures(tally(rows))).model_dump_json()

    async def events() -> AsyncIterator[str]:
        last = None
        quiet = 0.0
        yield "retry: 5000\n\n"
        while not await request.is_disconnected():
            payload = await figures()
            if payload != last:
                last = payload
                quiet = 0.0
                yield f"event: stats\ndata: {payload}\n\n"
            elif quiet >= heartbeat_every:
                quiet = 0.0
                yield ": heartbeat\n\n"
            await asyncio.sleep(interval)
            quiet += interval

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
