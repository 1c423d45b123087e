"""Keeping the hourly counters, and reading them back as dashboard figures."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, UTCDateTime, get_owned, insert_for
from leadflow.kit.errors import field_error
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.stats import StatsCounter
from leadflow.stats.schemas import (
    CampaignFigures,
    CampaignStatsOut,
    Figures,
    StatsOut,
    VariantFigures,
)
from leadflow.stats.views import FiguresView, parse_rates

MAX_BUCKETS = 2000
DEFAULT_RANGE = dt.timedelta(days=30)
K = TypeVar("K")


def hour_of(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


async def bump(
    session: AsyncSession,
    *,
    account_id: str,
    campaign_id: str,
    variant_id: str,
    step: int,
    when: dt.datetime,
    followups: int = 0,
    targeted: int = 0,
    conversions: int = 0,
    revenue: Decimal | None = None,
    currency: str | None = None,
    bounces: int = 0,
    complaints: int = 0,
) -> None:
    """Add to one hourly counter row (created on first use). Call inside the transaction
    that records the follow-up or the conversion, so the counters never drift."""
    insert = insert_for(session)
    stmt = insert(StatsCounter).values(
        account_id=account_id,
        campaign_id=campaign_id,
        variant_id=variant_id,
        step=step,
        hour=hour_of(when),
        currency=currency or "",
        followups_sent=followups,
        leads_targeted=targeted,
        conversions=conversions,
        revenue=revenue or Decimal(0),
        bounces=bounces,
        complaints=complaints,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "campaign_id", "variant_id", "step", "hour", "currency"],
        set_={
            "followups_sent": StatsCounter.followups_sent + stmt.excluded.followups_sent,
            "leads_targeted": StatsCounter.leads_targeted + stmt.excluded.leads_targeted,
            "conversions": StatsCounter.conversions + stmt.excluded.conversions,
            "revenue": StatsCounter.revenue + stmt.excluded.revenue,
            "bounces": StatsCounter.bounces + stmt.excluded.bounces,
            "complaints": StatsCounter.complaints + stmt.excluded.complaints,
        },
    )
    await session.execute(stmt)


class Sums(Protocol):
    @property
    def currency(self) -> str: ...
    @property
    def followups_sent(self) -> int: ...
    @property
    def leads_targeted(self) -> int: ...
    @property
    def conversions(self) -> int: ...
    @property
    def revenue(self) -> Decimal: ...
    @property
    def bounces(self) -> int: ...
    @property
    def complaints(self) -> int: ...


class CounterSum(NamedTuple):
    campaign_id: str
    variant_id: str
    step: int
    currency: str
    followups_sent: int
    leads_targeted: int
    conversions: int
    revenue: Decimal
    bounces: int = 0
    complaints: int = 0


class HourSum(NamedTuple):
    hour: dt.datetime
    currency: str
    followups_sent: int
    leads_targeted: int
    conversions: int
    revenue: Decimal
    bounces: int = 0
    complaints: int = 0


@dataclass
class Tally:
    followups_sent: int = 0
    targeted_leads: int = 0
    converted_leads: int = 0
    value: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    bounces: int = 0
    complaints: int = 0

    def add(self, row: Sums) -> None:
        self.followups_sent += row.followups_sent
        self.targeted_leads += row.leads_targeted
        self.converted_leads += row.conversions
        self.bounces += row.bounces
        self.complaints += row.complaints
        if row.currency and row.revenue:
            self.value[row.currency] += row.revenue

    @property
    def conversion_rate(self) -> float | None:
        if not self.targeted_leads:
            return None
        return self.converted_leads / self.targeted_leads

    @property
    def bounce_rate(self) -> float | None:
        return self.bounces / self.followups_sent if self.followups_sent else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.followups_sent if self.followups_sent else None


_SUMS = (
    func.sum(StatsCounter.followups_sent),
    func.sum(StatsCounter.leads_targeted),
    func.sum(StatsCounter.conversions),
    func.sum(StatsCounter.revenue),
    func.sum(StatsCounter.bounces),
    func.sum(StatsCounter.complaints),
)


def _window(
    account_id: str, start: dt.datetime, end: dt.datetime, campaign_id: str | None
) -> list[Any]:
    conditions = [
        StatsCounter.account_id == account_id,
        StatsCounter.hour >= hour_of(start),
        StatsCounter.hour < end,
    ]
    if campaign_id is not None:
        conditions.append(StatsCounter.campaign_id == campaign_id)
    return conditions


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


async def totals(
    session: AsyncSession,
    account_id: str,
    start: dt.datetime,
    end: dt.datetime,
    campaign_id: str | None = None,
) -> list[CounterSum]:
    """Sums per campaign, variant, step and currency over the window (summed in the database:
    the result has as many rows as there are combinations, however many emails were sent)."""
    keys = (
        StatsCounter.campaign_id,
        StatsCounter.variant_id,
        StatsCounter.step,
        StatsCounter.currency,
    )
    rows = await session.execute(
        select(*keys, *_SUMS).where(*_window(account_id, start, end, campaign_id)).group_by(*keys)
    )
    return [
        CounterSum(
            c,
            v,
            step,
            cur,
            int(f or 0),
            int(t or 0),
            int(k or 0),
            _decimal(r),
            int(b or 0),
            int(x or 0),
        )
        for c, v, step, cur, f, t, k, r, b, x in rows
    ]


def _bucket(session: AsyncSession, granularity: str) -> Any:
    if granularity == "hour":
        return StatsCounter.hour
    if session.get_bind().dialect.name == "postgresql":
        expr = func.date_trunc("day", func.timezone("UTC", StatsCounter.hour))
        return type_coerce(func.timezone("UTC", expr), UTCDateTime())
    return type_coerce(func.strftime("%Y-%m-%d 00:00:00.000000", StatsCounter.hour), UTCDateTime())


async def per_bucket(
    session: AsyncSession,
    account_id: str,
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
    campaign_id: str | None = None,
) -> list[HourSum]:
    """Sums per time bucket (hour or UTC day) and currency, grouped in the database."""
    bucket = _bucket(session, granularity).label("bucket")
    rows = await session.execute(
        select(bucket, StatsCounter.currency, *_SUMS)
        .where(*_window(account_id, start, end, campaign_id))
        .group_by(bucket, StatsCounter.currency)
    )
    return [
        HourSum(
            when,
            cur,
            int(f or 0),
            int(t or 0),
            int(k or 0),
            _decimal(r),
            int(b or 0),
            int(x or 0),
        )
        for when, cur, f, t, k, r, b, x in rows
    ]


def tally(rows: Iterable[Sums]) -> Tally:
    out = Tally()
    for row in rows:
        out.add(row)
    return out


def bucket_start(hour: dt.datetime, granularity: str) -> dt.datetime:
    return hour if granularity == "hour" else hour.replace(hour=0)


def buckets(start: dt.datetime, end: dt.datetime, granularity: str) -> list[dt.datetime]:
    step = dt.timedelta(hours=1) if granularity == "hour" else dt.timedelta(days=1)
    current = bucket_start(hour_of(start), granularity)
    out = []
    while current < end:
        out.append(current)
        current += step
    return out


# -- the dashboard: figures over a time range ------------------------------------------------


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


def _group(rows: Iterable[CounterSum], key: Callable[[CounterSum], K]) -> dict[K, list[CounterSum]]:
    out: dict[K, list[CounterSum]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


def step_tallies(rows: Iterable[CounterSum]) -> list[tuple[int, Tally]]:
    by_step = _group(rows, lambda r: r.step)
    out = []
    for step in (1, 2, 3):
        t = tally(by_step.get(step, []))
        # Each lead gets each step at most once: a step's targeted leads are its sends.
        t.targeted_leads = t.followups_sent
        out.append((step, t))
    return out


def bucket_tallies(
    rows: Iterable[HourSum], start: dt.datetime, end: dt.datetime, granularity: str
) -> list[tuple[dt.datetime, Tally]]:
    """One tally per bucket of the range, empty buckets included."""
    grouped: dict[dt.datetime, list[HourSum]] = defaultdict(list)
    for row in rows:
        grouped[bucket_start(row.hour, granularity)].append(row)
    return [(when, tally(grouped.get(when, []))) for when in buckets(start, end, granularity)]


async def _campaign(session: AsyncSession, account_id: str, campaign_id: str) -> Campaign:
    return await get_owned(session, Campaign, account_id, campaign_id, "campaign")


async def _campaign_names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
    return {row_id: name for row_id, name in rows}


async def overall_stats(
    session: AsyncSession,
    account: Account,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    granularity: str,
    campaign_id: str | None,
    rates: str | None,
    now: dt.datetime,
) -> StatsOut:
    """Overall, per step, per campaign and per time bucket; ``rates`` as the API takes them."""
    start, end = _range(start, end, granularity, now)
    if campaign_id is not None:
        await _campaign(session, account.id, campaign_id)
    view = FiguresView(account.default_currency, parse_rates(rates, account.default_currency))
    rows = await totals(session, account.id, start, end, campaign_id)
    hours = await per_bucket(session, account.id, start, end, granularity, campaign_id)
    by_campaign = _group(rows, lambda r: r.campaign_id)
    names = await _campaign_names(session, set(by_campaign))
    campaigns = [
        CampaignFigures(
            campaign_id=cid,
            name=names.get(cid),
            steps=view.steps(step_tallies(crows)),
            **view.fields(tally(crows)),
        )
        for cid, crows in sorted(by_campaign.items())
    ]
    return StatsOut(
        from_=start,
        to=end,
        granularity=granularity,
        overall=view.figures(tally(rows)),
        steps=view.steps(step_tallies(rows)),
        campaigns=campaigns,
        series=view.series(bucket_tallies(hours, start, end, granularity)),
    )


async def campaign_stats(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    granularity: str,
    rates: str | None,
    now: dt.datetime,
) -> CampaignStatsOut:
    """A campaign's figures overall, per step, per variant (live ones even without figures)
    and per time bucket."""
    campaign = await _campaign(session, account.id, campaign_id)
    start, end = _range(start, end, granularity, now)
    view = FiguresView(account.default_currency, parse_rates(rates, account.default_currency))
    rows = await totals(session, account.id, start, end, campaign.id)
    hours = await per_bucket(session, account.id, start, end, granularity, campaign.id)
    by_variant = _group(rows, lambda r: r.variant_id)
    every = list(
        (await session.execute(select(Variant).where(Variant.campaign_id == campaign.id))).scalars()
    )
    names = {v.id: v.name for v in every}
    variant_ids = sorted(set(by_variant) | {v.id for v in every if v.archived_at is None})
    variants = [
        VariantFigures(
            variant_id=vid,
            name=names.get(vid),
            steps=view.steps(step_tallies(by_variant.get(vid, []))),
            **view.fields(tally(by_variant.get(vid, []))),
        )
        for vid in variant_ids
    ]
    return CampaignStatsOut(
        campaign_id=campaign.id,
        name=campaign.name,
        from_=start,
        to=end,
        granularity=granularity,
        overall=view.figures(tally(rows)),
        steps=view.steps(step_tallies(rows)),
        variants=variants,
        series=view.series(bucket_tallies(hours, start, end, granularity)),
    )


# -- the live stream ----------------------------------------------------------------------


async def figures_stream(
    session: AsyncSession,
    db: Database,
    clock: Clock,
    account: Account,
    *,
    start: dt.datetime | None,
    campaign_id: str | None,
    interval: float,
    heartbeat: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncGenerator[Figures | None, None]:
    """Check the campaign (404 for other accounts' campaigns) in ``session``, then return the
    stream: the overall figures at once and whenever they change, ``None`` when ``heartbeat``
    seconds passed without a change; polled every ``interval`` seconds until ``disconnected``.

    Each poll reads in its own short session from ``db``: a long-lived stream must not hold
    a transaction (nor the request's session) open."""
    if campaign_id is not None:
        await _campaign(session, account.id, campaign_id)
    return _poll(
        db,
        clock,
        account.id,
        account.default_currency,
        start,
        campaign_id,
        interval,
        heartbeat,
        disconnected,
    )


async def _poll(
    db: Database,
    clock: Clock,
    account_id: str,
    currency: str,
    start: dt.datetime | None,
    campaign_id: str | None,
    interval: float,
    heartbeat: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncGenerator[Figures | None, None]:
    view = FiguresView(currency, None)  # no rates: the currency is never used
    last = None
    quiet = 0.0
    while not await disconnected():
        end = hour_of(clock.now()) + dt.timedelta(hours=1)
        async with db.session() as session:
            rows = await totals(session, account_id, start or end - DEFAULT_RANGE, end, campaign_id)
        figures = view.figures(tally(rows))
        current = figures.model_dump_json()
        if current != last:
            last = current
            quiet = 0.0
            yield figures
        elif quiet >= heartbeat:
            quiet = 0.0
            yield None
        await asyncio.sleep(interval)
        quiet += interval
