"""The dispatch job: claim due enrollments, decide, record, send, advance. Never twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit import logs
from leadflow.kit.clock import Clock
from leadflow.kit.db import ROWS_PER_STATEMENT, Database, chunks, insert_for
from leadflow.kit.ids import new_id
from leadflow.kit.leases import claim_due, lease, lease_free, release_held
from leadflow.kit.locking import lock_keys
from leadflow.kit.mail import (
    BeforeData,
    Mail,
    MailTransport,
    MaybeDelivered,
    PermanentMailError,
    SendWithdrawn,
    TransientMailError,
)
from leadflow.kit.metrics import (
    FOLLOWUPS,
    count_after_commit,
    record_dispatch_claim,
    step_label,
)
from leadflow.lifecycle.outcomes import (
    DataMarks,
    DispatchReport,
    Outgoing,
    record_failure,
    record_sent,
    record_sent_late,
    record_sent_many,
    settle_orphaned_sends,
)
from leadflow.lifecycle.rules import (
    aware as aware_utc,
)
from leadflow.lifecycle.rules import (
    claimable,
    claimable_by_join,
    due_after,
    due_at,
    is_paused,
    last_sent,
    lock_recipient,
)
from leadflow.lifecycle.sequence import complete, settle, stop
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Lead, LeadGroup
from leadflow.models.tracking import Suppression
from leadflow.notifications import events
from leadflow.templates.compose import build_email, lead_context, sender, unsubscribe_url
from leadflow.templates.isolation import RenderUnavailable, render_step_bounded
from leadflow.templates.render import Rendered, TemplateProblem, render_step
from leadflow.templates.wire import build_wire_email
from leadflow.vocabulary import (
    MAYBE_SENT,
    AfterUnknownStep,
    EnrollmentState,
    LeadStatus,
    MessageStatus,
    StopReason,
)

log = logging.getLogger("leadflow.dispatch")

# How often a worker looks for sends a dead worker left on sequences that stopped since.
ORPHAN_SWEEP = dt.timedelta(seconds=60)

Row = TypeVar("Row", Lead, Account, Campaign, Variant)

# A message row found "sending" by the worker that claims its enrollment next (the sender's
# claim expired: it died, or lost the claim while slow) is decided by its DATA mark, which
# every send commits right before SMTP DATA begins (``DataMarks``):
# - without the mark, the message was never handed over: this worker takes the send over
#   (the row's ``attempts`` goes up, so the old attempt, if it still runs, finds its mark
#   refused and never begins DATA) and sends it;
# - with it, the server may have it: never sent again (at most once), marked "unknown", and
#   the sequence continues or stops as the account says (``after_unknown_step``).


@dataclass
class _Batch:
    """A claimed batch: its lease token, the follow-ups recorded to send, the enrollments
    left to the one-at-a-time path, and what happened to it so far."""

    token: str
    report: DispatchReport = field(default_factory=DispatchReport)
    outgoing: list[Outgoing] = field(default_factory=list)
    single: list[str] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self, settings: Settings, db: Database, clock: Clock, transport: MailTransport
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.transport = transport
        self.lease = dt.timedelta(seconds=settings.dispatch_lease_seconds)
        self.stopping = False
        self.data_marks = DataMarks(db.engine, clock)
        self._swept_at: dt.datetime | None = None

    def stop(self) -> None:
        """Shutting down: claim nothing more, and give back claims not yet being sent; the sends
        already in flight finish."""
        self.stopping = True

    async def run_once(self) -> DispatchReport:
        """One tick: claim a batch of due enrollments, decide and record the whole batch in
        one transaction, send the follow-ups over the pool, then record what SMTP answered
        for all of them at once. Enrollments needing more than a send (a stop, a resumed or
        already recorded step, a pause since the claim, a broken template) take the careful
        one-at-a-time path afterwards."""
        await self._sweep()
        return await self._finish(await self._begin())

    async def run_until_idle(self, max_rounds: int = 100) -> DispatchReport:
        """Repeat ticks until nothing is due (tests, one-off catch-up)."""
        return await self._run(max_rounds, lambda report: report.claimed > 0)

    async def run_while_due(self, max_rounds: int = 1000) -> DispatchReport:
        """The worker's tick: batch after batch while the claims come back full (more is due
        than one batch), so that a backlog goes out at the speed of the pool, not one batch
        an interval; stops at the first short batch, or when shutting down."""
        full = self.settings.dispatch_batch_size
        return await self._run(max_rounds, lambda report: report.claimed >= full)

    async def _run(self, max_rounds: int, more: Callable[[DispatchReport], bool]) -> DispatchReport:
        """Batches while ``more`` says so after each claim. The next batch is claimed and
        recorded while the one before is being sent: the database work overlaps SMTP. Once
        a claim comes back empty, one more is tried after the batch in flight has finished
        (it may have given work back)."""
        await self._sweep()
        total = DispatchReport()
        batch = await self._begin()
        for round_ in range(1, max_rounds + 1):
            sending = asyncio.create_task(self._finish(batch))
            if not more(batch.report) or round_ == max_rounds or self.stopping:
                _add(total, await sending)
                break
            try:
                following = await self._begin()
            finally:
                _add(total, await sending)
            if following.report.claimed == 0:
                following = await self._begin()
            batch = following
        return total

    async def _begin(self) -> _Batch:
        """Claim a batch and record its sends (``sending``)."""
        batch = _Batch(token=secrets.token_hex(16))
        if self.stopping:
            return batch
        claimed = await self._claim(batch.token)
        batch.report.claimed = len(claimed)
        if not claimed:
            return batch
        try:
            batch.outgoing, batch.single = await self._prepare_batch(
                claimed, batch.token, batch.report
            )
        except Exception:  # rolled back: each enrollment takes the careful path instead
            log.exception("dispatch of a batch of %d failed; one at a time", len(claimed))
            batch.single = claimed
        return batch

    async def _finish(self, batch: _Batch) -> DispatchReport:
        """Send a begun batch, record the outcomes, then the one-at-a-time rest."""
        token, report = batch.token, batch.report
        await self._send_batch(batch.outgoing, token, report)
        limit = asyncio.Semaphore(self.settings.smtp_pool_size)

        async def guarded(enrollment_id: str) -> None:
            async with limit:
                if self.stopping:  # another worker takes it at once, not after the lease
                    report.released += 1
                    await self._release(enrollment_id, token)
                    return
                try:
                    await self._process(enrollment_id, token, report)
                except Exception as exc:  # one bad enrollment must not stop the batch
                    log.exception("dispatch of enrollment %s failed", enrollment_id)
                    report.errors.append(f"{enrollment_id}: {exc}")
                    await self._release(enrollment_id, token)

        await asyncio.gather(*(guarded(eid) for eid in batch.single))
        return report

    async def _claim(self, token: str) -> list[str]:
        now = self.clock.now()
        due = (Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_due_at <= now)
        limit = self.settings.dispatch_batch_size
        async with self.db.session() as session:
            params: dict[str, Any] = {}
            if self.db.dialect == "postgresql":
                candidates: Select[Any] = claimable()  # locks its rows itself
                params = {"now": now, "limit": limit}
                locked = True
            else:  # one writer: the conditional update below is the claim
                candidates = claimable_by_join(now, limit)
                locked = False
            # Re-checking the due time: another worker may have moved it on meanwhile.
            claimed = await claim_due(
                session,
                candidates,
                model=Enrollment,
                still_due=(*due, lease_free(Enrollment, now)),
                claim=lease(now, self.lease, token),
                returning=(Enrollment.next_due_at,),
                locked=locked,
                params=params,
            )
        record_dispatch_claim(now, [row.next_due_at for row in claimed])
        ids = [row.id for row in claimed]
        if ids:
            logs.bind(**logs.ids("enrollment_ids", ids))
        return ids

    async def _prepare_batch(
        self, claimed: list[str], token: str, report: DispatchReport
    ) -> tuple[list[Outgoing], list[str]]:
        """Decide for every claimed enrollment at once, render, and record ``sending`` the
        follow-ups to send (one multi-row insert). Returns them, and the enrollments left to
        the one-at-a-time path."""
        now = self.clock.now()
        single: list[str] = []
        outgoing: list[Outgoing] = []
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        Enrollment.id,
                        Enrollment.account_id,
                        Enrollment.lead_id,
                        Enrollment.campaign_id,
                        Enrollment.variant_id,
                        Enrollment.state,
                        Enrollment.next_step,
                        Enrollment.next_due_at,
                    )
                    .where(Enrollment.id.in_(claimed), Enrollment.lease_token == token)
                    .order_by(Enrollment.next_due_at, Enrollment.id)
                )
            ).all()
            # Lost leases and enrollments no longer active: the single path reports them.
            active = {row.id for row in rows if row.state == EnrollmentState.ACTIVE}
            single += [eid for eid in claimed if eid not in active]
            rows = [row for row in rows if row.id in active]
            if not rows:
                return outgoing, single
            leads = await _by_id(session, Lead, {row.lead_id for row in rows})
            accounts = await _by_id(session, Account, {row.account_id for row in rows})
            campaigns = await _by_id(session, Campaign, {row.campaign_id for row in rows})
            variants = await _by_id(session, Variant, {row.variant_id for row in rows})
            # Merchant templates render in render processes, all at once and before any
            # recipient is locked: a slow one holds up this batch, never another worker.
            custom = await self._render_custom(rows, leads, accounts, variants)
            recipients = {(row.account_id, leads[row.lead_id].email) for row in rows}
            if not await lock_keys(session, [f"dispatch:{a}:{e}" for a, e in recipients]):
                # SQLite has one writer: writing first takes the write lock now, so the
                # reads below come after any other worker's committed message.
                await session.execute(
                    update(Enrollment)
                    .where(Enrollment.id.in_([row.id for row in rows]))
                    .values(updated_at=now)
                )
            by_account: dict[str, list[str]] = defaultdict(list)
            for account_id, email in recipients:
                by_account[account_id].append(email)
            suppressed: set[tuple[str, str]] = set()
            last: dict[tuple[str, str], list[tuple[str, dt.datetime]]] = defaultdict(list)
            for account_id, emails in by_account.items():
                for chunk in chunks(sorted(emails), ROWS_PER_STATEMENT):
                    found = await session.execute(
                        select(Suppression.email).where(
                            Suppression.account_id == account_id, Suppression.email.in_(chunk)
                        )
                    )
                    suppressed.update((account_id, email) for email in found.scalars())
                    for email, enrollment_id, at in await session.execute(
                        last_sent(account_id, list(chunk))
                    ):
                        when = aware_utc(at)
                        if when is not None:
                            last[(account_id, email)].append((enrollment_id, when))
            recorded = {
                (enrollment_id, step)
                for enrollment_id, step in await session.execute(
                    select(Message.enrollment_id, Message.step).where(
                        Message.enrollment_id.in_([row.id for row in rows])
                    )
                )
            }
            groups = {
                (account_id, key): active
                for account_id, key, active in await session.execute(
                    select(LeadGroup.account_id, LeadGroup.key, LeadGroup.active).where(
                        LeadGroup.account_id.in_(list(accounts))
                    )
                )
            }
            later: list[dict[str, object]] = []
            inserts: list[dict[str, object]] = []
            for position, row in enumerate(rows, 1):
                if position % 16 == 0:
                    await asyncio.sleep(0)  # a batch in flight keeps sending meanwhile
                lead = leads[row.lead_id]
                account = accounts[row.account_id]
                campaign = campaigns[row.campaign_id]
                variant = variants[row.variant_id]
                step = row.next_step
                recipient = (account.id, lead.email)
                if (
                    lead.status != LeadStatus.OPEN
                    or recipient in suppressed
                    or campaign.is_finished(now)
                    or variant.archived_at is not None
                    or is_paused(account, groups.get((account.id, lead.source_type)), campaign, now)
                    or step > len(variant.steps)
                    or (row.id, step) in recorded
                ):
                    single.append(row.id)  # a stop, a wait, the end or a resume
                    continue
                others = [at for eid, at in last[recipient] if eid != row.id]
                due = due_after(
                    row.next_due_at,
                    step,
                    account,
                    lead,
                    campaign,
                    variant,
                    max(others) if others else None,
                )
                if due > now:
                    later.append({"id": row.id, "next_due_at": due})
                    continue
                if _is_custom(variant, step):
                    if row.id not in custom:  # it failed: the single path records why
                        single.append(row.id)
                        continue
                    message_id, rendered = custom[row.id]
                else:
                    message_id, rendered = new_id("msg"), None
                out = self._compose_new(
                    account, lead, variant, row.id, step, now, message_id, rendered
                )
                if out is None:
                    single.append(row.id)  # it records the failure
                    continue
                last[recipient].append((row.id, now))  # the cap holds within the batch too
                outgoing.append(out)
                inserts.append(
                    {
                        "id": out.message_id,
                        "account_id": account.id,
                        "enrollment_id": row.id,
                        "lead_id": lead.id,
                        "campaign_id": campaign.id,
                        "variant_id": variant.id,
                        "step": step,
                        "status": MessageStatus.SENDING.value,
                        "to_email": lead.email,
                        "subject": str(out.email["Subject"]),
                        "message_id_header": str(out.email["Message-ID"]),
                        "attempts": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            inserted: set[str] = set()
            if inserts:
                # One statement, sent as multi-row INSERTs (its compiled form is cached).
                messages = Message.__table__
                result = await session.execute(
                    insert_for(session)(messages)
                    .on_conflict_do_nothing(index_elements=["enrollment_id", "step"])
                    .returning(messages.c.id),
                    inserts,
                )
                inserted.update(result.scalars())
            settled = [out.enrollment_id for out in outgoing if out.message_id not in inserted]
            # Another attempt recorded the step first: it owns the send.
            report.skipped += len(settled)
            outgoing = [out for out in outgoing if out.message_id in inserted]
            if settled:
                await release_held(session, Enrollment, settled, token, updated_at=now)
            if later:
                report.rescheduled += len(later)
                await session.execute(
                    update(Enrollment),
                    [
                        {**values, "lease_until": None, "lease_token": None, "updated_at": now}
                        for values in later
                    ],
                )
        return outgoing, single

    def _compose_new(
        self,
        account: Account,
        lead: Lead,
        variant: Variant,
        enrollment_id: str,
        step: int,
        now: dt.datetime,
        message_id: str,
        rendered: Rendered | None,
    ) -> Outgoing | None:
        """The email of a step not recorded yet (``rendered`` already when the merchant
        wrote it), or None when it cannot be made."""
        base = self.settings.base_url
        if rendered is None:
            try:
                rendered = render_step(
                    variant.steps[step - 1],
                    lead_context(base, account, lead, message_id),
                    lead.language,
                )
            except Exception:  # a broken template: recorded on the single path
                return None
        from_header = sender(account, self.settings.mail_from)
        list_unsubscribe = unsubscribe_url(base, account, lead)
        email: Mail | None = None
        # Bytes written directly; the email package for what they cannot write (an address
        # outside ASCII, say); neither for a sender that makes no header (recorded on the
        # single path).
        for build in (build_wire_email, build_email):
            with contextlib.suppress(ValueError):
                email = build(
                    rendered=rendered,
                    from_header=from_header,
                    to=lead.email,
                    message_id=message_id,
                    list_unsubscribe=list_unsubscribe,
                    now=now,
                )
                break
        if email is None:
            return None
        return Outgoing(
            message_id=message_id,
            enrollment_id=enrollment_id,
            step=step,
            last_step=len(variant.steps),
            next_delay=(
                dt.timedelta(seconds=variant.steps[step]["delay_seconds"])
                if step < len(variant.steps)
                else None
            ),
            email=email,
            account_id=account.id,
            campaign_id=variant.campaign_id,
            variant_id=variant.id,
        )

    async def _render_custom(
        self,
        rows: Sequence[Any],
        leads: dict[str, Lead],
        accounts: dict[str, Account],
        variants: dict[str, Variant],
    ) -> dict[str, tuple[str, Rendered]]:
        """The merchant-written steps due in a batch, rendered concurrently within the
        limits: per enrollment, the new message's id (its links carry it) and the result.
        Those that fail are left out; the single path renders them again and records why."""
        base = self.settings.base_url
        wanted: list[tuple[str, str, Any]] = []
        for row in rows:
            variant, lead = variants[row.variant_id], leads[row.lead_id]
            if not _is_custom(variant, row.next_step):
                continue
            message_id = new_id("msg")
            context = lead_context(base, accounts[row.account_id], lead, message_id)
            wanted.append(
                (
                    row.id,
                    message_id,
                    render_step_bounded(variant.steps[row.next_step - 1], context, lead.language),
                )
            )
        if not wanted:
            return {}
        results = await asyncio.gather(*(render for _, _, render in wanted), return_exceptions=True)
        return {
            enrollment_id: (message_id, result)
            for (enrollment_id, message_id, _), result in zip(wanted, results, strict=True)
            if isinstance(result, Rendered)
        }

    async def _send_batch(
        self, outgoing: list[Outgoing], token: str, report: DispatchReport
    ) -> None:
        """Send over the pool, then record the outcomes: every success in one transaction,
        each failure on its own (they are rare and each decides a retry). At shutdown the
        follow-ups not handed to SMTP yet are given back: their ``sending`` rows go (they
        were never sent) and their claims are released for another worker."""
        if not outgoing:
            return
        limit = asyncio.Semaphore(self.settings.smtp_pool_size)
        sent: list[Outgoing] = []
        failed: list[tuple[Outgoing, Exception]] = []
        unsent: list[Outgoing] = []

        async def one(out: Outgoing) -> None:
            async with limit:
                if self.stopping:
                    unsent.append(out)
                    return
                try:
                    await self.transport.send(out.email, before_data=self._before_data(out))
                except SendWithdrawn:  # another worker took the send over: it is its own now
                    report.skipped += 1
                except (PermanentMailError, TransientMailError) as exc:
                    failed.append((out, exc))
                except MaybeDelivered as exc:  # the next claim settles it: unknown
                    log.warning("follow-up %s may have been delivered: %s", out.message_id, exc)
                    report.errors.append(f"{out.enrollment_id}: {exc}")
                    await self._release(out.enrollment_id, token)
                except Exception as exc:  # the next claim decides by the DATA mark
                    log.exception("sending follow-up %s failed", out.message_id)
                    report.errors.append(f"{out.enrollment_id}: {exc}")
                    await self._release(out.enrollment_id, token)
                else:
                    self.data_marks.sent(out)  # at once: a crash now leaves it sent, not unknown
                    sent.append(out)

        async with self.data_marks.held():
            await asyncio.gather(*(one(out) for out in outgoing))
        await record_sent_many(self.db, self.clock.now(), sent, report)
        for out, exc in failed:
            await record_failure(
                self.db,
                self.settings,
                self.clock.now(),
                out,
                str(exc),
                permanent=isinstance(exc, PermanentMailError),
                report=report,
            )
        if unsent:
            report.released += len(unsent)
            async with self.db.session() as session:
                await session.execute(
                    delete(Message).where(
                        Message.id.in_([out.message_id for out in unsent]),
                        Message.status == MessageStatus.SENDING,
                        Message.attempts == 1,  # not taken over by another worker since
                        Message.data_started_at.is_(None),
                    )
                )
                await release_held(
                    session,
                    Enrollment,
                    [out.enrollment_id for out in unsent],
                    token,
                    updated_at=self.clock.now(),
                )

    def _before_data(self, out: Outgoing) -> BeforeData:
        """What the transport awaits right before DATA: the committed DATA mark."""

        return functools.partial(self.data_marks.mark, out)

    async def _sweep(self) -> None:
        """Now and then (ORPHAN_SWEEP): settle what dead workers left in flight on sequences
        that stopped since; a live claim is never touched."""
        now = self.clock.now()
        if self._swept_at is not None and now - self._swept_at < ORPHAN_SWEEP:
            return
        self._swept_at = now
        async with self.db.session() as session:
            unknown, withdrawn = await settle_orphaned_sends(session, now, self.lease)
        if unknown or withdrawn:
            log.warning(
                "settled sends of stopped sequences left by a stopped worker: %d unknown, %d "
                "never handed over",
                unknown,
                withdrawn,
            )

    async def _release(self, enrollment_id: str, token: str) -> None:
        async with self.db.session() as session:
            await release_held(
                session, Enrollment, [enrollment_id], token, updated_at=self.clock.now()
            )

    async def _process(self, enrollment_id: str, token: str, report: DispatchReport) -> None:
        async with self.db.session() as session:
            outgoing = await self._prepare(session, enrollment_id, token, report)
        if outgoing is None:
            return
        try:
            await self.transport.send(outgoing.email, before_data=self._before_data(outgoing))
        except SendWithdrawn:  # another worker took the send over
            report.skipped += 1
        except MaybeDelivered as exc:  # the next claim settles it by its DATA mark: unknown
            log.warning("follow-up %s may have been delivered: %s", outgoing.message_id, exc)
            report.errors.append(f"{enrollment_id}: {exc}")
            await self._release(enrollment_id, token)
        except (PermanentMailError, TransientMailError) as exc:
            await record_failure(
                self.db,
                self.settings,
                self.clock.now(),
                outgoing,
                str(exc),
                permanent=isinstance(exc, PermanentMailError),
                report=report,
            )
        else:
            await record_sent(self.db, self.clock.now(), outgoing, report)

    async def _prepare(
        self, session: AsyncSession, enrollment_id: str, token: str, report: DispatchReport
    ) -> Outgoing | None:
        now = self.clock.now()
        enrollment = (
            await session.execute(
                select(Enrollment).where(
                    Enrollment.id == enrollment_id, Enrollment.lease_token == token
                )
            )
        ).scalar_one_or_none()
        if enrollment is None or enrollment.state != EnrollmentState.ACTIVE:
            report.skipped += 1  # the lease expired and another worker took over
            return None
        lead = await session.get_one(Lead, enrollment.lead_id)
        await lock_recipient(session, enrollment, lead, now)
        campaign = await session.get_one(Campaign, enrollment.campaign_id)
        variant = await session.get_one(Variant, enrollment.variant_id)
        account = await session.get_one(Account, enrollment.account_id)

        suppressed = (
            await session.execute(
                select(Suppression.id).where(
                    Suppression.account_id == account.id, Suppression.email == lead.email
                )
            )
        ).first()
        reason: StopReason | None = None
        if lead.status != LeadStatus.OPEN:
            reason = StopReason(lead.status)
        elif suppressed is not None:
            reason = StopReason.SUPPRESSED
        elif campaign.archived_at is not None:
            reason = StopReason.CAMPAIGN_ARCHIVED
        elif campaign.ends_at is not None and campaign.ends_at <= now:
            reason = StopReason.CAMPAIGN_ENDED
        elif variant.archived_at is not None:
            reason = StopReason.VARIANT_REMOVED
        if reason is not None:
            stop(enrollment, reason, now)
            report.stopped += 1
            return None
        group_active = (
            await session.execute(
                select(LeadGroup.active).where(
                    LeadGroup.account_id == account.id, LeadGroup.key == lead.source_type
                )
            )
        ).scalar_one_or_none()
        if is_paused(account, group_active, campaign, now):
            settle(enrollment, now)  # paused since the claim: wait, keep the due time
            report.skipped += 1
            return None
        step = enrollment.next_step
        if step > len(variant.steps):
            complete(enrollment, now)
            report.completed += 1
            return None

        due = await due_at(session, account, lead, campaign, variant, enrollment)
        if due > now:
            enrollment.next_due_at = due
            report.rescheduled += 1
            settle(enrollment, now)
            return None

        message = (
            await session.execute(
                select(Message).where(Message.enrollment_id == enrollment.id, Message.step == step)
            )
        ).scalar_one_or_none()
        if message is not None:
            return await self._resume(session, message, enrollment, variant, now, report)

        message_id = new_id("msg")
        insert = insert_for(session)
        inserted = (
            await session.execute(
                insert(Message)
                .values(
                    id=message_id,
                    account_id=account.id,
                    enrollment_id=enrollment.id,
                    lead_id=lead.id,
                    campaign_id=campaign.id,
                    variant_id=variant.id,
                    step=step,
                    status=MessageStatus.SENDING,
                    to_email=lead.email,
                    subject="",
                    message_id_header="",
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["enrollment_id", "step"])
                .returning(Message.id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            report.skipped += 1  # another attempt recorded this step first: it owns the send
            settle(enrollment, now)
            return None
        message = await session.get_one(Message, message_id)
        return await self._compose(
            session, account, lead, variant, enrollment, message, now, report
        )

    async def _resume(
        self,
        session: AsyncSession,
        message: Message,
        enrollment: Enrollment,
        variant: Variant,
        now: dt.datetime,
        report: DispatchReport,
    ) -> Outgoing | None:
        """A message row for this step exists already: never send it a second time, unless
        it is known never to have been handed over."""
        stop_after = False
        if message.status == MessageStatus.SENDING and message.data_started_at is not None:
            # Its sender's claim ran out after DATA began: the server may have it.
            message.status = MessageStatus.UNKNOWN
            message.last_error = "worker stopped while handing the message over; not resent"
            message.sent_at = message.data_started_at
            message.updated_at = now
            account = await session.get_one(Account, enrollment.account_id)
            stop_after = account.after_unknown_step == AfterUnknownStep.STOP
            log.warning("follow-up %s: delivery unknown, not resent", message.id)
        elif message.status == MessageStatus.SENT:
            # Marked sent as the server took it; its worker died before recording the rest
            # (the sequence moving on, the counters, the notification): recorded now.
            await record_sent_late(session, message, enrollment, variant, now)
        if message.status in MAYBE_SENT:
            if stop_after and enrollment.next_step < len(variant.steps):
                stop(enrollment, StopReason.DELIVERY_UNKNOWN, now)
                report.stopped += 1
                return None
            self._advance(enrollment, variant, message.sent_at or now, report)
            settle(enrollment, now)
            return None
        if message.status == MessageStatus.FAILED:
            stop(enrollment, StopReason.SEND_FAILED, now)
            report.stopped += 1
            return None
        # "deferred": known not delivered; "sending" without the DATA mark: its sender's claim
        # ran out before DATA, so it was never handed over. This attempt takes the send over
        # atomically; the attempt count going up fences the old one off its DATA mark.
        retry = message.status == MessageStatus.DEFERRED
        taken = await session.execute(
            update(Message)
            .where(
                Message.id == message.id,
                Message.status == message.status,
                Message.attempts == message.attempts,
                Message.data_started_at.is_(None) if not retry else true(),
            )
            .values(
                status=MessageStatus.SENDING,
                attempts=Message.attempts + 1,
                data_started_at=None,
                updated_at=now,
            )
            .returning(Message.id)
        )
        if taken.scalar_one_or_none() is None:
            report.skipped += 1
            settle(enrollment, now)
            return None
        if not retry:
            log.info("follow-up %s: its sender stopped before DATA; sending it", message.id)
        await session.refresh(message)
        lead = await session.get_one(Lead, enrollment.lead_id)
        account = await session.get_one(Account, enrollment.account_id)
        return await self._compose(
            session, account, lead, variant, enrollment, message, now, report
        )

    async def _compose(
        self,
        session: AsyncSession,
        account: Account,
        lead: Lead,
        variant: Variant,
        enrollment: Enrollment,
        message: Message,
        now: dt.datetime,
        report: DispatchReport,
    ) -> Outgoing | None:
        step = message.step
        stored = variant.steps[step - 1]
        base = self.settings.base_url
        try:
            rendered = await render_step_bounded(
                stored, lead_context(base, account, lead, message.id), lead.language
            )
        except RenderUnavailable:
            raise  # no render process: the claim is given back and tried again next tick
        except TemplateProblem as exc:  # saved before a rule or limit existed, or broken since
            await self._fail(
                session,
                message,
                enrollment,
                StopReason.TEMPLATE_ERROR,
                f"template error in the {exc.part}: {exc.message}",
                now,
                report,
            )
            return None
        except Exception as exc:  # a predefined template that cannot render this lead
            await self._fail(
                session,
                message,
                enrollment,
                StopReason.TEMPLATE_ERROR,
                f"template error: {exc}",
                now,
                report,
            )
            return None
        try:
            email = build_email(
                rendered=rendered,
                from_header=sender(account, self.settings.mail_from),
                to=lead.email,
                message_id=message.id,
                list_unsubscribe=unsubscribe_url(base, account, lead),
                now=now,
            )
        except ValueError as exc:  # the account's sender cannot make a header (stored earlier)
            await self._fail(
                session,
                message,
                enrollment,
                StopReason.INVALID_SENDER,
                f"invalid sender (fix it in the settings): {exc}",
                now,
                report,
            )
            return None
        message.subject = rendered.subject
        message.message_id_header = str(email["Message-ID"])
        next_delay = (
            dt.timedelta(seconds=variant.steps[step]["delay_seconds"])
            if step < len(variant.steps)
            else None
        )
        return Outgoing(
            message_id=message.id,
            enrollment_id=enrollment.id,
            step=step,
            last_step=len(variant.steps),
            next_delay=next_delay,
            email=email,
            account_id=account.id,
            campaign_id=variant.campaign_id,
            variant_id=variant.id,
            attempt=message.attempts,
        )

    async def _fail(
        self,
        session: AsyncSession,
        message: Message,
        enrollment: Enrollment,
        reason: StopReason,
        error: str,
        now: dt.datetime,
        report: DispatchReport,
    ) -> None:
        """A failure of the merchant's configuration: never retried; the merchant sees why in
        the lead's sequence and in a ``followup.failed`` notification."""
        message.status = MessageStatus.FAILED
        message.last_error = error[:2000]
        stop(enrollment, reason, now)
        report.failed += 1
        count_after_commit(session, FOLLOWUPS.labels("failed", step_label(message.step)))
        await events.followup_failed(session, message, message.last_error, now)

    def _advance(
        self, enrollment: Enrollment, variant: Variant, sent_at: dt.datetime, report: DispatchReport
    ) -> None:
        step = enrollment.next_step
        enrollment.next_step = step + 1
        enrollment.attempts = 0
        if step >= len(variant.steps):
            enrollment.state = EnrollmentState.COMPLETED
            report.completed += 1
        else:
            delay = dt.timedelta(seconds=variant.steps[step]["delay_seconds"])
            enrollment.next_due_at = sent_at + delay


def _is_custom(variant: Variant, step: int) -> bool:
    """Whether step ``step`` of ``variant`` exists and is the merchant's own template."""
    return 1 <= step <= len(variant.steps) and not variant.steps[step - 1].get("template")


def _add(total: DispatchReport, report: DispatchReport) -> None:
    for name in (
        "claimed",
        "sent",
        "rescheduled",
        "retried",
        "failed",
        "stopped",
        "completed",
        "skipped",
        "released",
    ):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.errors += report.errors


async def _by_id(session: AsyncSession, model: type[Row], ids: set[str]) -> dict[str, Row]:
    """Rows of ``model`` by id, in one query."""
    found: Any = await session.execute(select(model).where(model.id.in_(sorted(ids))))
    return {row.id: row for row in found.scalars()}
