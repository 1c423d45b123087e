"""Receiving an email service provider's webhook: authenticate it with the account's
credentials for the provider, read its bounce and complaint reports, and apply them in one
transaction (nothing is written on any error)."""

from __future__ import annotations

import datetime as dt

import httpx
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.ingest.intake import SignedDelivery
from leadflow.integrations import esp, ses
from leadflow.integrations.errors import IntegrationNotConfigured
from leadflow.integrations.schemas import Platform
from leadflow.kit.db import Database
from leadflow.kit.errors import AppError, not_found
from leadflow.lifecycle.bounces import Policy, apply_report
from leadflow.models.accounts import Account
from leadflow.models.integrations import Integration


class MailReportOut(BaseModel):
    outcome_id: str
    kind: str = Field(description="`hard_bounce`, `soft_bounce` or `complaint`.")
    email: str
    duplicate: bool = Field(description="True when this event was already received.")
    suppressed: bool = Field(description="Whether it suppressed the address.")
    message_id: str | None = Field(description="The follow-up it was matched to, if any.")


class MailWebhookResult(BaseModel):
    """The answer to a provider's delivery. Redeliveries answer `duplicate: true` per
    report and write nothing."""

    reports: list[MailReportOut]
    ignored: int = Field(description="Events of other kinds (deliveries, opens, clicks…).")
    subscription_confirmed: bool = Field(
        default=False, description="Amazon SES: an SNS subscription was confirmed."
    )


def policy_of(settings: Settings) -> Policy:
    return Policy(
        soft_limit=settings.soft_bounce_limit,
        soft_window=dt.timedelta(days=settings.soft_bounce_window_days),
        match_window=dt.timedelta(days=settings.bounce_match_days),
    )


async def receive_mail_events(
    db: Database,
    platform: Platform,
    delivery: SignedDelivery,
    settings: Settings,
    now: dt.datetime,
    sns: ses.SnsClient,
) -> MailWebhookResult:
    account_id = delivery.account_id
    async with db.session() as session:
        account = await session.get(Account, account_id)
        integration = (
            await session.get(Integration, (account_id, platform.value)) if account else None
        )
    if account is None:
        raise not_found("account")
    body = await delivery.read_body(settings.max_body_bytes)
    if integration is None:
        raise IntegrationNotConfigured(platform)
    secret = integration.secret
    if platform is Platform.POSTMARK:
        esp.verify_postmark(delivery.headers, secret)
        found = esp.read_postmark(body)
    elif platform is Platform.SENDGRID:
        esp.verify_sendgrid(delivery.headers, body, secret)
        found = esp.read_sendgrid(body)
    elif platform is Platform.MAILGUN:
        found = esp.read_mailgun(body, secret)
    elif platform is Platform.SES:
        try:
            found = await ses.read_ses(body, secret, sns)
        except httpx.HTTPError as exc:
            raise AppError(
                503, "unavailable", f"Could not confirm the SNS subscription: {exc}"
            ) from None
    else:  # pragma: no cover - the routes name the providers
        raise not_found("provider")
    policy = policy_of(settings)

    async def work(session: AsyncSession) -> MailWebhookResult:
        applied = [
            await apply_report(session, account_id, report, policy, now) for report in found.reports
        ]
        return MailWebhookResult(
            reports=[
                MailReportOut(
                    outcome_id=a.outcome_id,
                    kind=a.kind,
                    email=a.email,
                    duplicate=a.duplicate,
                    suppressed=a.suppressed,
                    message_id=a.message_id,
                )
                for a in applied
            ],
            ignored=found.ignored,
            subscription_confirmed=found.subscription_confirmed,
        )

    return await db.transaction(work)
