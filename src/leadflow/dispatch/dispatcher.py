"""The dispatch job: claim due enrollments, decide, record, send, advance. Never twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.accounts.service import min_delay
from leadflow.campaigns.enrollment import is_running
from leadflow.campaigns.models import Campaign, Variant
from leadflow.config import Settings
from leadflow.dispatch.compose import build_email, lead_context, sender, unsubscribe_url
from leadflow.dispatch.mail import MailTransport, PermanentMailError, TransientMailError
from leadflow.dispatch.models import Enrollment, Message
from leadflow.dispatch.render import render_step
from leadflow.dispatch.scheduling import next_allowed, retry_delay
from leadflow.domain import LeadStatus
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, insert_for
from leadflow.kit.ids import new_id
from leadflow.leads.models import Lead, LeadGroup
from leadflow.notifications import events
from leadflow.stats.service import bump
from leadflow.tracking.models import Suppression

log = logging.getLogger("leadflow.dispatch")

# A message row left in "sending" this long means its worker died mid-send: we cannot know
# whether the server took it, so it is never sent again (at most once) and marked "unknown".
STALE_SENDING = dt.timedelta(minutes=15)


def _release_lease(enrollment: Enrollment, now: dt.datetime) -> None:
    enrollment.lease_until = None
    enrollment.lease_token = None
    enrollment.updated_at = now


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    rescheduled: int = 0
    retried: int = 0
    failed: int = 0
    stopped: int = 0
    completed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Outgoing:
    message_id: str
    enrollment_id: str
    step: int
    last_step: int
    next_delay: dt.timedelta | None
    email: EmailMessage


class Dispatcher:
    def __init__(
        self, settings: Settings, db: Database, clock: Clock, transport: MailTransport
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.transport = transport
        self.lease = dt.timedelta(seconds=settings.dispatch_lease_seconds)

    async def run_once(self) -> DispatchReport:
        """One tick: claim a batch of due enrollments and process each of them."""
        report = DispatchReport()
        token = secrets.token_hex(16)
        claimed = await self._claim(token)
        report.claimed = len(claimed)
        limit = asyncio.Semaphore(self.settings.smtp_pool_size)

        async def guarded(enrollment_id: str) -> None:
            async with limit:
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
        async with self.db.session() as session:
            due = (
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
                .where(
                    Enrollment.state == "active",
                    Enrollment.next_due_at <= now,
                    or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now),
                    # Paused work (switch off, group off, campaign inactive or not started)
                    # is simply not claimed; stop conditions are claimed so they get stopped.
                    Account.lead_management_enabled.is_(True),
                    or_(LeadGroup.active.is_(None), LeadGroup.active.is_(True)),
                    or_(
                        and_(
                            Campaign.status == "active",
                            or_(Campaign.starts_at.is_(None), Campaign.starts_at <= now),
                        ),
                        Campaign.archived_at.is_not(None),
                        and_(Campaign.ends_at.is_not(None), Campaign.ends_at <= now),
                    ),
                )
                .order_by(Enrollment.next_due_at)
                .limit(self.settings.dispatch_batch_size)
                .with_for_update(of=Enrollment, skip_locked=True)
            )
            ids = list((await session.execute(due)).scalars())
            if not ids:
                return []
            # The conditional update is the claim itself (SQLite has no row locks).
            claimed = await session.execute(
                update(Enrollment)
                .where(
                    Enrollment.id.in_(ids),
                    Enrollment.state == "active",
                    or_(Enrollment.lease_until.is_(None), Enrollment.lease_until < now),
                )
                .values(lease_until=now + self.lease, lease_token=token)
                .returning(Enrollment.id)
            )
            return list(claimed.scalars())

    async def _release(self, enrollment_id: str, token: str, **values: object) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(Enrollment)
                .where(Enrollment.id == enrollment_id, Enrollment.lease_token == token)
                .values(lease_until=None, lease_token=None, updated_at=self.clock.now(), **values)
            )

    async def _process(self, enrollment_id: str, token: str, report: DispatchReport) -> None:
        async with self.db.session() as session:
            outgoing = await self._prepare(session, enrollment_id, token, report)
        if outgoing is None:
            return
        try:
            await self.transport.send(outgoing.email)
        except PermanentMailError as exc:
            await self._after_failure(outgoing, token, str(exc), permanent=True, report=report)
        except TransientMailError as exc:
            await self._after_failure(outgoing, token, str(exc), permanent=False, report=report)
        else:
            await self._after_success(outgoing, token, report)

    async def _prepare(
        self, session: AsyncSession, enrollment_id: str, token: str, report: DispatchReport
    ) -> _Outgoing | None:
        now = self.clock.now()
        enrollment = (
            await session.execute(
                select(Enrollment).where(
                    Enrollment.id == enrollment_id, Enrollment.lease_token == token
                )
            )
        ).scalar_one_or_none()
        if enrollment is None or enrollment.state != "active":
            report.skipped += 1  # the lease expired and another worker took over
            return None
        lead = await session.get_one(Lead, enrollment.lead_id)
        await self._lock_recipient(session, enrollment, lead)
        campaign = await session.get_one(Campaign, enrollment.campaign_id)
        variant = await session.get_one(Variant, enrollment.variant_id)
        account = await session.get_one(Account, enrollment.account_id)

        def finish() -> None:
            _release_lease(enrollment, now)

        suppressed = (
            await session.execute(
                select(Suppression.id).where(
                    Suppression.account_id == account.id, Suppression.email == lead.email
                )
            )
        ).first()
        reason = None
        if lead.status != LeadStatus.OPEN:
            reason = lead.status
        elif suppressed is not None:
            reason = "suppressed"
        elif campaign.archived_at is not None:
            reason = "campaign_archived"
        elif campaign.ends_at is not None and campaign.ends_at <= now:
            reason = "campaign_ended"
        elif variant.archived_at is not None:
            reason = "variant_removed"
        if reason is not None:
            enrollment.state = "stopped"
            enrollment.stop_reason = reason
            report.stopped += 1
            finish()
            return None
        group_active = (
            await session.execute(
                select(LeadGroup.active).where(
                    LeadGroup.account_id == account.id, LeadGroup.key == lead.source_type
                )
            )
        ).scalar_one_or_none()
        paused = group_active is False or not account.lead_management_enabled
        if paused or not is_running(campaign, now):
            finish()  # paused since the claim: wait, keep the due time
            report.skipped += 1
            return None
        step = enrollment.next_step
        if step > len(variant.steps):
            enrollment.state = "completed"
            report.completed += 1
            finish()
            return None

        due = await self._due(session, account, lead, campaign, variant, enrollment)
        if due > now:
            enrollment.next_due_at = due
            report.rescheduled += 1
            finish()
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
                    status="sending",
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
            finish()
            return None
        message = await session.get_one(Message, message_id)
        return await self._compose(
            session, account, lead, variant, enrollment, message, now, report
        )

    async def _lock_recipient(
        self, session: AsyncSession, enrollment: Enrollment, lead: Lead
    ) -> None:
        """Serialise the decisions about one address until this transaction ends, so the
        frequency cap sees a follow-up another enrollment (same tick, other worker) records."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"dispatch:{enrollment.account_id}:{lead.email}"},
            )
        else:
            # SQLite has one writer: writing first takes the write lock now, so the reads
            # below come after any other worker's committed message.
            await session.execute(
                update(Enrollment)
                .where(Enrollment.id == enrollment.id)
                .values(updated_at=self.clock.now())
            )

    async def _resume(
        self,
        session: AsyncSession,
        message: Message,
        enrollment: Enrollment,
        variant: Variant,
        now: dt.datetime,
        report: DispatchReport,
    ) -> _Outgoing | None:
        """A message row for this step exists already: never send it a second time."""

        def finish() -> None:
            _release_lease(enrollment, now)

        if message.status == "sending" and message.updated_at < now - STALE_SENDING:
            message.status = "unknown"
            message.last_error = "worker stopped while sending; not resent"
            message.sent_at = message.updated_at
            message.updated_at = now
        if message.status in ("sent", "unknown"):
            self._advance(enrollment, variant, message.sent_at or now, report)
            finish()
            return None
        if message.status == "failed":
            enrollment.state = "stopped"
            enrollment.stop_reason = "send_failed"
            report.stopped += 1
            finish()
            return None
        if message.status == "sending":
            enrollment.next_due_at = now + self.lease  # its sender is still at work
            report.skipped += 1
            finish()
            return None
        # "deferred": known not delivered; this attempt takes the retry over atomically.
        taken = await session.execute(
            update(Message)
            .where(Message.id == message.id, Message.status == "deferred")
            .values(status="sending", attempts=Message.attempts + 1, updated_at=now)
            .returning(Message.id)
        )
        if taken.scalar_one_or_none() is None:
            report.skipped += 1
            finish()
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
    ) -> _Outgoing | None:
        step = message.step
        stored = variant.steps[step - 1]
        base = self.settings.base_url
        try:
            rendered = render_step(
                stored, lead_context(base, account, lead, message.id), lead.language
            )
        except Exception as exc:  # a template that broke after it was saved
            message.status = "failed"
            message.last_error = f"template error: {exc}"
            enrollment.state = "stopped"
            enrollment.stop_reason = "template_error"
            report.failed += 1
            _release_lease(enrollment, now)
            await events.followup_failed(session, message, message.last_error, now)
            return None
        from_header = sender(account, self.settings.mail_from)
        email = build_email(
            rendered=rendered,
            from_header=from_header,
            to=lead.email,
            message_id=message.id,
            list_unsubscribe=unsubscribe_url(base, account, lead),
            now=now,
        )
        message.subject = rendered.subject
        message.message_id_header = str(email["Message-ID"])
        next_delay = (
            dt.timedelta(seconds=variant.steps[step]["delay_seconds"])
            if step < len(variant.steps)
            else None
        )
        return _Outgoing(
            message_id=message.id,
            enrollment_id=enrollment.id,
            step=step,
            last_step=len(variant.steps),
            next_delay=next_delay,
            email=email,
        )

    def _advance(
        self, enrollment: Enrollment, variant: Variant, sent_at: dt.datetime, report: DispatchReport
    ) -> None:
        step = enrollment.next_step
        enrollment.next_step = step + 1
        enrollment.attempts = 0
        if step >= len(variant.steps):
            enrollment.state = "completed"
            report.completed += 1
        else:
            delay = dt.timedelta(seconds=variant.steps[step]["delay_seconds"])
            enrollment.next_due_at = sent_at + delay

    async def _due(
        self,
        session: AsyncSession,
        account: Account,
        lead: Lead,
        campaign: Campaign,
        variant: Variant,
        enrollment: Enrollment,
    ) -> dt.datetime:
        due = enrollment.next_due_at
        if enrollment.next_step == 1:
            # The minimum delay is the merchant's current setting, applied at send time.
            delay = dt.timedelta(seconds=variant.steps[0]["delay_seconds"])
            due = max(due, lead.captured_at + max(delay, min_delay(account, lead.source_type)))
        last = (
            await session.execute(
                select(func.max(func.coalesce(Message.sent_at, Message.created_at))).where(
                    Message.account_id == account.id,
                    Message.to_email == lead.email,
                    Message.enrollment_id != enrollment.id,
                    Message.status.in_(("sent", "unknown", "sending")),
                )
            )
        ).scalar_one_or_none()
        if last is not None:
            if last.tzinfo is None:  # coalesce() loses the column type on SQLite
                last = last.replace(tzinfo=dt.UTC)
            due = max(due, last + dt.timedelta(hours=account.min_hours_between_emails))
        timezone = lead.timezone or account.timezone
        return next_allowed(due, campaign.send_window, timezone)

    async def _after_success(self, out: _Outgoing, token: str, report: DispatchReport) -> None:
        now = self.clock.now()
        async with self.db.session() as session:
            await session.execute(
                update(Message)
                .where(Message.id == out.message_id)
                .values(
                    status="sent",
                    sent_at=now,
                    updated_at=now,
                    subject=out.email["Subject"],
                    message_id_header=out.email["Message-ID"],
                    last_error=None,
                )
            )
            values: dict[str, object] = {
                "next_step": out.step + 1,
                "attempts": 0,
                "lease_until": None,
                "lease_token": None,
                "updated_at": now,
            }
            if out.next_delay is None:
                values["state"] = "completed"
            else:
                values["next_due_at"] = now + out.next_delay
            # Conditional on the step: a stop (purchase, unsubscribe) during the send wins.
            advanced = await session.execute(
                update(Enrollment)
                .where(
                    Enrollment.id == out.enrollment_id,
                    Enrollment.next_step == out.step,
                    Enrollment.state == "active",
                )
                .values(**values)
                .returning(Enrollment.id)
            )
            message = await session.get_one(Message, out.message_id)
            await bump(
                session,
                account_id=message.account_id,
                campaign_id=message.campaign_id,
                variant_id=message.variant_id,
                step=message.step,
                when=now,
                followups=1,
                targeted=1 if message.step == 1 else 0,
            )
            await events.followup_sent(session, message, now)
            if advanced.scalar_one_or_none() is not None and out.next_delay is None:
                report.completed += 1
                enrollment = await session.get_one(Enrollment, out.enrollment_id)
                await events.followups_completed(session, enrollment, out.step, now)
        report.sent += 1

    async def _after_failure(
        self, out: _Outgoing, token: str, error: str, *, permanent: bool, report: DispatchReport
    ) -> None:
        now = self.clock.now()
        async with self.db.session() as session:
            enrollment = await session.get_one(Enrollment, out.enrollment_id)
            attempts = enrollment.attempts + 1
            give_up = permanent or attempts >= self.settings.smtp_max_attempts
            await session.execute(
                update(Message)
                .where(Message.id == out.message_id)
                .values(
                    status="failed" if give_up else "deferred",
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
            enrollment.attempts = attempts
            enrollment.lease_until = None
            enrollment.lease_token = None
            enrollment.updated_at = now
            if give_up:
                if enrollment.state == "active":
                    enrollment.state = "stopped"
                    enrollment.stop_reason = "smtp_rejected" if permanent else "smtp_unavailable"
                report.failed += 1
                message = await session.get_one(Message, out.message_id)
                await events.followup_failed(session, message, error[:2000], now)
                log.warning("follow-up %s failed for good: %s", out.message_id, error)
            else:
                enrollment.next_due_at = now + retry_delay(
                    attempts,
                    self.settings.smtp_retry_base_seconds,
                    self.settings.smtp_retry_max_seconds,
                )
                report.retried += 1
                log.info("follow-up %s deferred (attempt %d): %s", out.message_id, attempts, error)
