"""Backfilling a campaign: enrolling the open leads captured before it ran.

The request only records a backfill (``queued``) and answers at once; the worker works
through the account's open leads in capture order, a chunk at a time. Each chunk is one short
transaction: a keyset read of the next leads, the campaign's filters and the deterministic
variant split applied in memory, one set-based ``INSERT … ON CONFLICT DO NOTHING`` of the
enrollments (leads some campaign has taken are skipped there), the A/B counters, and the
backfill's counts and resume point.
Memory stays bounded by the chunk, other transactions never wait long behind it, a stopped
worker's backfill resumes where the last chunk ended (another worker takes it over when the
lease expires), and a lead that some other path enrolled in the meantime is simply skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    func,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.counters import count_assigned
from leadflow.abtest.service import allowed_variants, get_test
from leadflow.campaigns.errors import CampaignEnded, CampaignInactive
from leadflow.campaigns.service import get_campaign, live_variants
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, UTCDateTime, get_owned, insert_for, is_unavailable, table
from leadflow.kit.errors import DomainError, not_found
from leadflow.kit.ids import new_id
from leadflow.kit.leases import claim_due, lease, lease_free
from leadflow.lifecycle.enrollment import choose_variant, matches
from leadflow.lifecycle.rules import first_due
from leadflow.models.accounts import Account
from leadflow.models.backfills import Backfill
from leadflow.models.campaigns import Campaign
from leadflow.models.enrollments import Enrollment
from leadflow.models.leads import Lead
from leadflow.vocabulary import BackfillStatus, CampaignStatus, EnrollmentState, LeadStatus

log = logging.getLogger("leadflow.backfill")

CHUNK = 5000
LEASE = dt.timedelta(minutes=5)
YIELD_EVERY = 100  # leads handled in memory between two turns of the event loop
UNFINISHED = (BackfillStatus.QUEUED.value, BackfillStatus.RUNNING.value)
# What a chunk reads of each lead: enough for the filters and the first due time (and the
# products, when the campaign filters on them).
_LEAD_COLUMNS = (
    Lead.id,
    Lead.source_type,
    Lead.country,
    Lead.language,
    Lead.captured_at,
)


class BackfillInProgress(DomainError):
    problem_code = "backfill_in_progress"
    default_detail = "A backfill of this campaign is already queued or running."


def _refusal(campaign: Campaign, now: dt.datetime) -> DomainError | None:
    """Why leads cannot be backfilled into the campaign now, if they cannot."""
    if campaign.status != CampaignStatus.ACTIVE or campaign.archived_at is not None:
        return CampaignInactive("Activate the campaign before backfilling.")
    if campaign.ends_at is not None and campaign.ends_at <= now:
        # Its enrollments would be stopped at once, and a lead joins one campaign only.
        return CampaignEnded("The campaign has ended: nothing to backfill.")
    return None


async def start_backfill(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    captured_from: dt.datetime | None,
    now: dt.datetime,
) -> Backfill:
    """Queue a backfill of the account's running campaign (409 if it is not running, or if
    one is already queued or running)."""
    campaign = await get_campaign(session, account.id, campaign_id)
    refusal = _refusal(campaign, now)
    if refusal is not None:
        raise refusal
    insert = insert_for(session)
    backfill_id = new_id("bfl")
    inserted = await session.execute(
        insert(Backfill)
        .values(
            id=backfill_id,
            account_id=account.id,
            campaign_id=campaign.id,
            status=BackfillStatus.QUEUED.value,
            captured_from=captured_from,
            scanned=0,
            enrolled=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            # The partial unique index's own predicate, literally (PostgreSQL infers the index
            # from it).
            index_elements=["campaign_id"],
            index_where=text("status IN ('queued', 'running')"),
        )
        .returning(Backfill.id)
    )
    if inserted.scalar_one_or_none() is None:
        running = (
            await session.execute(
                select(Backfill.id).where(
                    Backfill.campaign_id == campaign.id, Backfill.status.in_(UNFINISHED)
                )
            )
        ).scalar_one_or_none()
        raise BackfillInProgress(
            f"Backfill {running} of this campaign is already queued or running."
            if running
            else None
        )
    return await session.get_one(Backfill, backfill_id)


async def get_backfill(
    session: AsyncSession, account_id: str, campaign_id: str, backfill_id: str
) -> Backfill:
    backfill = await get_owned(session, Backfill, account_id, backfill_id, "backfill")
    if backfill.campaign_id != campaign_id:
        raise not_found("backfill")
    return backfill


async def unfinished_backfill(
    session: AsyncSession, account_id: str, campaign_id: str
) -> Backfill | None:
    """The campaign's backfill that is queued or running, if there is one."""
    found: Backfill | None = (
        await session.execute(
            select(Backfill).where(
                Backfill.account_id == account_id,
                Backfill.campaign_id == campaign_id,
                Backfill.status.in_(UNFINISHED),
            )
        )
    ).scalar_one_or_none()
    return found


async def leads_to_scan(session: AsyncSession, backfill: Backfill) -> int:
    """How many open leads the backfill examines in all (its ``scanned`` once complete,
    leads captured meanwhile aside): for showing its progress."""
    campaign = await session.get_one(Campaign, backfill.campaign_id)
    stmt = select(func.count()).where(
        Lead.account_id == backfill.account_id, Lead.status == LeadStatus.OPEN.value
    )
    if campaign.source != "all":
        stmt = stmt.where(Lead.source_type == campaign.source)
    if backfill.captured_from is not None:
        stmt = stmt.where(Lead.captured_at >= backfill.captured_from)
    return int(await session.scalar(stmt) or 0)


def _finish(
    backfill: Backfill, status: BackfillStatus, now: dt.datetime, reason: str | None
) -> None:
    backfill.status = status.value
    backfill.reason = reason
    backfill.finished_at = now
    backfill.updated_at = now
    backfill.lease_until = None
    backfill.lease_token = None


async def _insert_enrollments(
    session: AsyncSession,
    account_id: str,
    campaign_id: str,
    chosen: list[tuple[str, str, str, str, dt.datetime]],
    now: dt.datetime,
) -> Counter[str]:
    """Enroll (enrollment id, lead id, source type, variant id, first due) in one statement,
    skipping
    leads some campaign has taken; returns how many were enrolled per variant."""
    if not chosen:
        return Counter()
    enrollments = table(Enrollment)
    ids, lead_ids, sources, variant_ids, dues = (
        list(values) for values in zip(*chosen, strict=True)
    )
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # One statement whatever the chunk size: five arrays unnested into rows.
        rows = (
            func.unnest(
                bindparam("ids", ids, type_=ARRAY(String)),
                bindparam("lead_ids", lead_ids, type_=ARRAY(String)),
                bindparam("sources", sources, type_=ARRAY(String)),
                bindparam("variant_ids", variant_ids, type_=ARRAY(String)),
                bindparam("dues", dues, type_=ARRAY(DateTime(timezone=True))),
            )
            .table_valued("id", "lead_id", "source_type", "variant_id", "due")
            .render_derived(name="chunk")
        )
        source = select(
            rows.c.id,
            literal(account_id, String),
            rows.c.lead_id,
            rows.c.source_type,
            literal(campaign_id, String),
            rows.c.variant_id,
            literal(EnrollmentState.ACTIVE.value, String),
            literal(1, Integer),
            rows.c.due,
            literal(0, Integer),
            literal(now, UTCDateTime),
            literal(now, UTCDateTime),
        )
        columns = ["id", "account_id", "lead_id", "source_type", "campaign_id", "variant_id"]
        columns += ["state"]
        columns += ["next_step", "next_due_at", "attempts", "created_at", "updated_at"]
        stmt = pg_insert(enrollments).from_select(columns, source)
        result = await connection.execute(
            stmt.on_conflict_do_nothing(index_elements=["lead_id"]).returning(
                enrollments.c.variant_id
            )
        )
        return Counter(result.scalars())
    values = [
        {
            "id": enrollment_id,
            "account_id": account_id,
            "lead_id": lead_id,
            "source_type": source_type,
            "campaign_id": campaign_id,
            "variant_id": variant_id,
            "state": EnrollmentState.ACTIVE.value,
            "next_step": 1,
            "next_due_at": due,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for enrollment_id, lead_id, source_type, variant_id, due in chosen
    ]
    insert = insert_for(session)
    result = await connection.execute(
        insert(enrollments)
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(enrollments.c.variant_id),
        values,
    )
    return Counter(result.scalars())


async def run_chunk(
    session: AsyncSession, backfill_id: str, token: str, now: dt.datetime, size: int = CHUNK
) -> bool:
    """Enroll the next ``size`` leads of a backfill this worker holds; False once it is over
    (finished, or its lease was lost to another worker)."""
    backfill = (
        await session.execute(
            select(Backfill)
            .where(Backfill.id == backfill_id, Backfill.lease_token == token)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if backfill is None or backfill.status != BackfillStatus.RUNNING:
        return False
    campaign = await session.get_one(Campaign, backfill.campaign_id)
    refusal = _refusal(campaign, now)
    if refusal is not None:
        _finish(backfill, BackfillStatus.STOPPED, now, refusal.detail)
        return False
    account = await session.get_one(Account, backfill.account_id)
    variants = allowed_variants(
        await get_test(session, campaign.id), await live_variants(session, campaign.id)
    )
    # Keyset order (captured_at, id): a range of the (account_id, captured_at, id) index, so a
    # chunk costs the same at the end of a million leads as at the start. Leads some
    # campaign has taken are read too and skipped by the insert (one enrollment per lead):
    # excluding them here would let the planner scan all enrollments for every chunk.
    columns = [*_LEAD_COLUMNS, *([Lead.products] if campaign.products else [])]
    stmt = (
        select(*columns)
        .where(Lead.account_id == account.id, Lead.status == LeadStatus.OPEN.value)
        .order_by(Lead.captured_at, Lead.id)
        .limit(size)
    )
    if backfill.after_captured_at is not None and backfill.after_lead_id is not None:
        stmt = stmt.where(
            tuple_(Lead.captured_at, Lead.id)
            > tuple_(
                literal(backfill.after_captured_at, UTCDateTime), literal(backfill.after_lead_id)
            )
        )
    if campaign.source != "all":
        stmt = stmt.where(Lead.source_type == campaign.source)
    if backfill.captured_from is not None:
        stmt = stmt.where(Lead.captured_at >= backfill.captured_from)
    # Core rows, not ORM objects: a chunk reads thousands of leads.
    leads = list(await (await session.connection()).execute(stmt))
    if not leads or not variants:
        _finish(backfill, BackfillStatus.COMPLETED, now, None)
        return False
    # enrollment, lead, its source type, variant, due
    chosen: list[tuple[str, str, str, str, dt.datetime]] = []
    for index, row in enumerate(leads, 1):
        lead = cast(Lead, row)  # the columns matches() and first_due() read
        if matches(campaign, lead):
            variant = choose_variant(lead.id, variants)
            due = first_due(account, lead, variant)
            chosen.append((new_id("enr"), lead.id, lead.source_type, variant.id, due))
        if index % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # requests served by the same process run in between
    assigned = await _insert_enrollments(session, account.id, campaign.id, chosen, now)
    enrolled = sum(assigned.values())
    await count_assigned(
        session, account_id=account.id, campaign_id=campaign.id, variant_counts=assigned
    )
    await session.execute(
        update(Backfill)
        .where(Backfill.id == backfill.id)
        .values(
            scanned=Backfill.scanned + len(leads),
            enrolled=Backfill.enrolled + enrolled,
            after_captured_at=leads[-1].captured_at,
            after_lead_id=leads[-1].id,
            updated_at=now,
            **lease(now, LEASE, token),
        )
    )
    return True


async def _claim(db: Database, now: dt.datetime, token: str) -> str | None:
    """Take the oldest backfill nobody works on (queued, or whose worker's lease expired)."""

    async def claim(session: AsyncSession) -> str | None:
        candidates = (
            select(Backfill.id)
            .where(Backfill.status.in_(UNFINISHED), lease_free(Backfill, now))
            .order_by(Backfill.created_at, Backfill.id)
            .limit(1)
        )
        claimed = await claim_due(
            session,
            candidates,
            model=Backfill,
            still_due=[Backfill.status.in_(UNFINISHED), lease_free(Backfill, now)],
            claim={
                "status": BackfillStatus.RUNNING.value,
                "updated_at": now,
                **lease(now, LEASE, token),
            },
        )
        if not claimed:
            return None
        backfill_id: str = claimed[0][0]
        await session.execute(
            update(Backfill)
            .where(Backfill.id == backfill_id, Backfill.started_at.is_(None))
            .values(started_at=now)
        )
        return backfill_id

    return await db.transaction(claim)


async def _set(db: Database, backfill_id: str, token: str, **values: Any) -> None:
    """Update a backfill this worker holds, giving up its lease."""
    async with db.session() as session:
        await session.execute(
            update(Backfill)
            .where(Backfill.id == backfill_id, Backfill.lease_token == token)
            .values(lease_until=None, lease_token=None, **values)
        )


async def run_backfills(
    db: Database,
    clock: Clock,
    *,
    size: int = CHUNK,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """The worker job: work through every waiting backfill, one chunk per transaction, until
    none is left or the worker stops (a stopped backfill keeps its lease until it expires,
    then resumes from its last chunk). Returns how many backfills it finished."""
    token = secrets.token_hex(16)
    finished = 0
    while not stopping():
        backfill_id = await _claim(db, clock.now(), token)
        if backfill_id is None:
            return finished
        log.info("backfill %s: started", backfill_id)

        async def chunk(session: AsyncSession, backfill_id: str = backfill_id) -> bool:
            return await run_chunk(session, backfill_id, token, clock.now(), size)

        try:
            while await db.transaction(chunk):
                if stopping():
                    # Resumed from its last chunk by the next worker, without waiting for
                    # the lease to expire.
                    await _set(db, backfill_id, token, updated_at=clock.now())
                    return finished
                await asyncio.sleep(0)  # requests sharing this process run between chunks
        except Exception as exc:
            if is_unavailable(exc):
                raise  # the lease expires and the backfill resumes once the database is back
            log.exception("backfill %s failed", backfill_id)
            now = clock.now()
            reason = f"{type(exc).__name__}: {exc}"[:500]
            await _set(
                db,
                backfill_id,
                token,
                status=BackfillStatus.FAILED.value,
                reason=reason,
                finished_at=now,
                updated_at=now,
            )
        finished += 1
        log.info("backfill %s: finished", backfill_id)
    return finished
