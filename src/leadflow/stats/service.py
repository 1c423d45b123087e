"""Keeping the hourly counters, and reading them back as dashboard figures."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import UTCDateTime, insert_for
from leadflow.stats.models import StatsCounter


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
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "campaign_id", "variant_id", "step", "hour", "currency"],
        set_={
            "followups_sent": StatsCounter.followups_sent + stmt.excluded.followups_sent,
            "leads_targeted": StatsCounter.leads_targeted + stmt.excluded.leads_targeted,
            "conversions": StatsCounter.conversions + stmt.excluded.conversions,
            "revenue": StatsCounter.revenue + stmt.excluded.revenue,
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


class CounterSum(NamedTuple):
    campaign_id: str
    variant_id: str
    step: int
    currency: str
    followups_sent: int
    leads_targeted: int
    conversions: int
    revenue: Decimal


class HourSum(NamedTuple):
    hour: dt.datetime
    currency: str
    followups_sent: int
    leads_targeted: int
    conversions: int
    revenue: Decimal


@dataclass
class Tally:
    followups_sent: int = 0
    targeted_leads: int = 0
    converted_leads: int = 0
    value: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, row: Sums) -> None:
        self.followups_sent += row.followups_sent
        self.targeted_leads += row.leads_targeted
        self.converted_leads += row.conversions
        if row.currency and row.revenue:
            self.value[row.currency] += row.revenue

    @property
    def conversion_rate(self) -> float | None:
        if not self.targeted_leads:
            return None
        return self.converted_leads / self.targeted_leads


_SUMS = (
    func.sum(StatsCounter.followups_sent),
    func.sum(StatsCounter.leads_targeted),
    func.sum(StatsCounter.conversions),
    func.sum(StatsCounter.revenue),
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
        CounterSum(c, v, step, cur, int(f or 0), int(t or 0), int(k or 0), _decimal(r))
        for c, v, step, cur, f, t, k, r in rows
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
        HourSum(when, cur, int(f or 0), int(t or 0), int(k or 0), _decimal(r))
        for when, cur, f, t, k, r in rows
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
