"""The capture forms' background job: double opt-in confirmation emails (an outbox: the
pending sign-ups not yet mailed) and the expiry of unconfirmed sign-ups."""

from __future__ import annotations

import logging

from sqlalchemy import select

from leadflow.accounts.capture import capture_settings_of
from leadflow.config import Settings
from leadflow.ingest.capture import EXPIRED, PENDING, confirmation_token, expire_signups
from leadflow.kit.jobs import Job
from leadflow.kit.mail import PermanentMailError, wire_email
from leadflow.models.accounts import Account
from leadflow.models.capture import CaptureConsent
from leadflow.templates.optin import confirmation_email

log = logging.getLogger("leadflow.capture")

CONFIRMATION_INTERVAL = 5.0
BATCH = 100


class OptInConfirmationJob(Job):
    name = "opt_in_confirmations"

    @classmethod
    def interval(cls, settings: Settings) -> float:
        return CONFIRMATION_INTERVAL

    async def run(self) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.db.session() as session:
            await expire_signups(session, now)
        async with self.ctx.db.session() as session:
            due = list(
                await session.execute(
                    select(CaptureConsent.id, CaptureConsent.account_id)
                    .where(
                        CaptureConsent.status == PENDING,
                        CaptureConsent.confirmation_sent_at.is_(None),
                        CaptureConsent.expires_at > now,
                    )
                    .order_by(CaptureConsent.created_at)
                    .limit(BATCH)
                )
            )
        for consent_id, _account_id in due:
            await self._send_one(consent_id)

    async def _send_one(self, consent_id: str) -> None:
        """One confirmation: the row is marked in the same transaction that sends, so a
        failed send is tried again on the next run and a sent one is not."""
        settings = self.ctx.settings
        async with self.ctx.db.session() as session:
            consent = await session.get(CaptureConsent, consent_id, with_for_update=True)
            if consent is None or consent.confirmation_sent_at is not None:
                return
            account = await session.get(Account, consent.account_id)
            if account is None:
                return
            link = f"{settings.base_url.rstrip('/')}/v1/capture/confirm/"
            link += confirmation_token(account, consent)
            copy = confirmation_email(
                consent.language, account.name, link, capture_settings_of(account).perk
            )
            sender = account.sender_email or settings.mail_from
            mail = wire_email(
                [
                    ("From", sender),
                    ("To", consent.email),
                    ("Subject", copy.subject),
                    ("Content-Language", copy.language),
                ],
                text=copy.text,
                html=copy.html,
            )
            try:
                await self.ctx.mail.send(mail)
            except PermanentMailError:
                # The address does not exist: nothing to confirm, ever.
                log.info("opt-in confirmation %s refused by the mail server", consent_id)
                consent.status, consent.details = EXPIRED, {}
                return
            except Exception:
                log.warning("opt-in confirmation %s not sent; retried later", consent_id)
                return
            consent.confirmation_sent_at = self.ctx.clock.now()


JOBS: tuple[type[Job], ...] = (OptInConfirmationJob,)
