"""The dispatch job: claim due enrollments, decide, record, send, advance. Never twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, insert_for
from leadflow.kit.ids import new_id
from leadflow.kit.leases import claim_due, lease, lease_free, release_held
from leadflow.kit.mail import MailTransport, PermanentMailError, TransientMailError
from leadflow.lifecycle.outcomes import DispatchReport, Outgoing, record_failure, record_sent
from leadflow.lifecycle.rules import due_at, is_paused, lock_recipient, not_paused
from leadflow.lifecycle.sequence import complete, settle, stop
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Lead, LeadGroup
from leadflow.models.tracking import Suppression
from leadflow.notifications import events
from leadflow.templates.compose import build_email, lead_context, sender, unsubscribe_url
from leadflow.templates.render import render_step
from leadflow.vocabulary import (
    MAYBE_SENT,
    EnrollmentState,
    LeadStatus,
    MessageStatus,
    StopReason,
)

log = logging.getLogger("leadflow.dispatch")

# A message row left in "sending" this long means its worker died mid-send: we cannot know
# whether the server took it, so it is never sent again (at most once) and marked "unknown".
STALE_SENDING = dt.timedelta(minutes=15)


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

    def stop(self) -> None:
        """Shutting down: claim nothing more, and give back claims not yet being sent; the sends
        already in flight finish."""
        self.stopping = True

    async def run_once(self) -> DispatchReport:
        """One tick: claim a batch of due enrollments and process each of them."""
        report = DispatchReport()
        if self.stopping:
            return report
        token = secrets.token_hex(16)
        claimed = await self._claim(token)
        report.claimed = len(claimed)
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

        await asyncio.gather(*(guarded(eid) for eid in claimed))
        return report

    async def run_until_idle(self, max_rounds: int = 100) -> DispatchReport:
        """Repeat ticks until nothing is due (tests, one-off catch-up)."""
        total = DispatchReport()
        for _ in range(max_rounds):
            report = await self.run_once()
            for name in ("claimed", "sent", "rescheduled", "retried", "failed", "stopped"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.completed += report.completed
            total.skipped += report.skipped
            total.errors += report.errors
            if report.claimed == 0:
                break
        return total

    async def _claim(self, token: str) -> list[str]:
        now = self.clock.now()
        due = (Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_due_at <= now)
        candidates = (
            select(Enrollment.id)
            .join(Account, Account.id == Enrollment.account_id)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .join(Lead, Lead.id == Enrollment.lead_id)
            .outerjoin(
                LeadGroup,
                and_(
                    LeadGroup.account_id == Enrollment.account_id,
                    LeadGroup.key == Lead.source_type,
                ),
            )
            .where(*due, lease_free(Enrollment, now), not_paused(now))
            .order_by(Enrollment.next_due_at)
            .limit(self.settings.dispatch_batch_size)
        )
        async with self.db.session() as session:
            # Re-checking the due time: another worker may have moved it on meanwhile.
            claimed = await claim_due(
                session,
                candidates,
                model=Enrollment,
                still_due=(*due, lease_free(Enrollment, now)),
                claim=lease(now, self.lease, token),
            )
        return [row.id for row in claimed]

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
            await self.transport.send(outgoing.email)
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
        """A message row for this step exists already: never send it a second time."""

        if message.status == MessageStatus.SENDING and message.updated_at < now - STALE_SENDING:
            message.status = MessageStatus.UNKNOWN
            message.last_error = "worker stopped while sending; not resent"
            message.sent_at = message.updated_at
            message.updated_at = now
        if message.status in MAYBE_SENT:
            self._advance(enrollment, variant, message.sent_at or now, report)
            settle(enrollment, now)
            return None
        if message.status == MessageStatus.FAILED:
            stop(enrollment, StopReason.SEND_FAILED, now)
            report.stopped += 1
            return None
        if message.status == MessageStatus.SENDING:
            enrollment.next_due_at = now + self.lease  # its sender is still at work
            report.skipped += 1
            settle(enrollment, now)
            return None
        # "deferred": known not delivered; this attempt takes the retry over atomically.
        taken = await session.execute(
            update(Message)
            .where(Message.id == message.id, Message.status == MessageStatus.DEFERRED)
            .values(status=MessageStatus.SENDING, attempts=Message.attempts + 1, updated_at=now)
            .returning(Message.id)
        )
        if taken.scalar_one_or_none() is None:
            report.skipped += 1
            settle(enrollment, now)
            return None
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
            rendered = render_step(
                stored, lead_context(base, account, lead, message.id), lead.language
            )
        except Exception as exc:  # a template that broke after it was saved
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
