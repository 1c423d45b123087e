"""Rate limits of the capture endpoint, and double opt-in end to end: the confirmation email
through a real SMTP server, its link, and the follow-ups that wait for it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from leadflow.accounts.service import get_account
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.ingest.capture import confirmation_token
from leadflow.ingest.capture_jobs import OptInConfirmationJob
from leadflow.kit.jobs import JobContext
from leadflow.kit.mail import SmtpTransport
from leadflow.lifecycle.dispatcher import Dispatcher
from tests.capture.helpers import consents, leads, public_key, put_capture_settings, signup
from tests.support.api import PROBLEM, app_client, make_account
from tests.support.campaigns import create_campaign, custom_step


@pytest.fixture
async def limited(db, clock) -> AsyncIterator[httpx.AsyncClient]:
    """An app allowing 3 sign-ups a minute per IP address and 5 per account."""
    settings = Settings(
        database_url=db.url,
        admin_token="test-admin-token-0123456789abcdef",
        base_url="http://testserver",
        capture_per_ip_per_minute=3,
        capture_per_account_per_minute=5,
    )
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as c:
        yield c


async def test_too_many_sign_ups_from_one_ip_get_429_with_retry_after(limited, clock, db):
    account = await make_account(limited)
    key = await public_key(limited, account)
    for i in range(3):
        response = await limited.post(f"/v1/capture/{key}", json=signup(f"r{i}@example.com"))
        assert response.status_code == 202, response.text
    refused = await limited.post(f"/v1/capture/{key}", json=signup("r3@example.com"))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.headers["retry-after"] == "20"  # one sign-up every 60/3 s
    assert len(await consents(db)) == 3
    clock.advance(seconds=20)
    again = await limited.post(f"/v1/capture/{key}", json=signup("r3@example.com"))
    assert again.status_code == 202
    assert len(await leads(limited, account)) == 4


async def test_an_account_is_limited_across_ip_addresses(limited, db, clock):
    account = await make_account(limited)
    key = await public_key(limited, account)
    app = limited._transport.app  # type: ignore[attr-defined]
    answers = []
    for i in range(6):
        transport = httpx.ASGITransport(app=app, client=(f"10.0.0.{i}", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.post(f"/v1/capture/{key}", json=signup(f"a{i}@example.com"))
            answers.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
    assert answers == [202] * 5 + [429]
    # Another account is not held back by this one's limit.
    other = await make_account(limited, "Other Shop")
    other_key = await public_key(limited, other)
    transport = httpx.ASGITransport(app=app, client=("10.0.1.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.post(f"/v1/capture/{other_key}", json=signup())
    assert response.status_code == 202


def _link(text: str) -> str:
    found = re.search(r"http://testserver(/v1/capture/confirm/\S+)", text)
    assert found, text
    return found.group(1)


def _text(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_double_opt_in_round_trip(client, account, clock, db, mail_settings, smtp_sink):
    await put_capture_settings(client, account, double_opt_in=True, perk="WELCOME10")
    await create_campaign(
        client,
        account,
        name="Welcome",
        source="all",
        steps=[custom_step(delay="PT1H", subject="Welcome {{ first_name }}")],
        status="active",
    )
    key = await public_key(client, account)
    response = await client.post(f"/v1/capture/{key}", json=signup(language="de-AT"))
    assert response.status_code == 202 and response.json() == {"status": "received"}
    assert await leads(client, account) == []  # nothing to follow up until confirmed
    (held,) = await consents(db)
    assert held.status == "pending" and held.lead_id is None

    transport = SmtpTransport(smtp_sink.url, pool_size=1, timeout=5)
    job = OptInConfirmationJob(JobContext(mail_settings, db, clock, transport))
    try:
        await job.run()
        await job.run()  # sent once
        (mail,) = smtp_sink.messages
        assert str(mail["To"]) == "jane@example.com"
        assert mail["Subject"] == "Bitte bestätigen Sie Ihre Anmeldung"
        text = _text(mail)
        assert "WELCOME10" in text
        link = _link(text)

        page = await client.get(link)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'lang="de"' in page.text and "Anmeldung bestätigt" in page.text
        (lead,) = await leads(client, account)
        assert lead["source_type"] == "opt_in" and lead["customer"]["language"] == "de-AT"
        assert lead["attributes"]["perk"] == "WELCOME10"
        assert (await client.get(link)).status_code == 200  # again: nothing changes
        assert len(await leads(client, account)) == 1
        (confirmed,) = await consents(db)
        assert confirmed.status == "confirmed" and confirmed.lead_id == lead["id"]

        clock.advance(hours=1)
        report = await Dispatcher(mail_settings, db, clock, transport).run_once()
        assert report.sent == 1
        assert smtp_sink.messages[-1]["Subject"] == "Welcome Jane"
    finally:
        await transport.close()


async def test_an_unconfirmed_sign_up_expires(client, account, clock, db, mail_settings):
    await put_capture_settings(client, account, double_opt_in=True)
    key = await public_key(client, account)
    await client.post(f"/v1/capture/{key}", json=signup())
    (held,) = await consents(db)
    async with db.session() as session:
        token = confirmation_token(await get_account(session, account["id"]), held)
    clock.advance(days=8)  # past capture_confirm_days (7)
    job = OptInConfirmationJob(JobContext(mail_settings, db, clock, _NoMail()))
    await job.run()
    (expired,) = await consents(db)
    assert expired.status == "expired" and expired.details == {}
    page = await client.get(f"/v1/capture/confirm/{token}")
    assert page.status_code == 404 and "<html" in page.text
    assert await leads(client, account) == []
    forged = await client.get(f"/v1/capture/confirm/{held.id}.AAAA")
    assert forged.status_code == 404


class _NoMail:
    """Nothing is due: sending anything fails the test."""

    async def send(self, message, *, before_data=None) -> None:
        raise AssertionError("an expired sign-up got a confirmation email")

    async def close(self) -> None:
        pass


async def test_signing_up_again_while_unconfirmed_sends_no_second_email(
    client, account, clock, db, mail_settings, smtp_sink
):
    await put_capture_settings(client, account, double_opt_in=True)
    key = await public_key(client, account)
    first = await client.post(f"/v1/capture/{key}", json=signup())
    clock.advance(minutes=5)
    second = await client.post(f"/v1/capture/{key}", json=signup("JANE@example.com"))
    assert (first.status_code, first.content) == (second.status_code, second.content)
    transport = SmtpTransport(smtp_sink.url, pool_size=1, timeout=5)
    try:
        await OptInConfirmationJob(JobContext(mail_settings, db, clock, transport)).run()
    finally:
        await transport.close()
    assert len(smtp_sink.messages) == 1
    assert len(await consents(db)) == 1


async def test_an_address_the_mail_server_refuses_is_not_tried_again(
    client, account, clock, db, mail_settings, smtp_sink
):
    await put_capture_settings(client, account, double_opt_in=True)
    key = await public_key(client, account)
    await client.post(f"/v1/capture/{key}", json=signup("nobody@example.com"))
    smtp_sink.handler.reply = "550 5.1.1 no such user"
    transport = SmtpTransport(smtp_sink.url, pool_size=1, timeout=5)
    try:
        job = OptInConfirmationJob(JobContext(mail_settings, db, clock, transport))
        await job.run()
        (refused,) = await consents(db)
        assert refused.status == "expired" and refused.confirmation_sent_at is None
        smtp_sink.handler.reply = None
        await job.run()
    finally:
        await transport.close()
    assert smtp_sink.messages == []
