"""Soft bounces counted in a window, tenant isolation, Amazon SES specifics (SNS subscription,
certificate host, topic), and bounce and complaint figures in the stats."""

from __future__ import annotations

import datetime as dt
import json

from tests.bounces.helpers import (
    CERT_URL,
    MAILGUN_KEY,
    POSTMARK_SECRET,
    TOPIC_ARN,
    configure,
    mailgun_event,
    message_rows,
    post,
    postmark_bounce,
    postmark_headers,
    ses_notification,
    sns_signed,
    subscription_confirmation,
    suppressions,
    written,
)
from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now
from tests.notifications.helpers import add_endpoint
from tests.support.api import auth
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

EMAIL = "jane@example.com"


async def _soft(client, account, when: dt.datetime, n: int) -> dict:
    body = postmark_bounce(EMAIL, when, type_="SoftBounce", bounce_id=5000 + n)
    response = await post(client, account, "postmark", body, postmark_headers())
    assert response.status_code == 200, response.text
    (report,) = response.json()["reports"]
    assert report["kind"] == "soft_bounce"
    return report


async def test_soft_bounces_suppress_after_the_limit_within_the_window(
    client, account, clock, dispatcher, db, notifier, receiver
):
    """Defaults: 3 soft bounces within 7 days."""
    await configure(client, account, "postmark", POSTMARK_SECRET)
    await add_endpoint(client, account, receiver, event_types=["lead.bounced"])
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    start = clock.now()

    assert (await _soft(client, account, start, 1))["suppressed"] is False
    assert (await _soft(client, account, start + dt.timedelta(days=2), 2))["suppressed"] is False
    # The first one falls out of the window: still two within seven days.
    third = await _soft(client, account, start + dt.timedelta(days=8), 3)
    assert third["suppressed"] is False
    assert await suppressions(db) == []
    assert (await enrollment(db)).state == "active"
    await notifier.run_once()
    assert receiver.posts == []

    fourth = await _soft(client, account, start + dt.timedelta(days=8, hours=1), 4)
    assert fourth["suppressed"] is True
    (suppression,) = await suppressions(db)
    assert suppression.reason == "bounced"
    assert (await enrollment(db)).stop_reason == "suppressed"
    await notifier.run_once()
    (notification,) = receiver.posts
    assert notification.json["type"] == "lead.bounced"
    assert notification.json["data"]["kind"] == "soft_bounce"
    # The follow-up is marked soft-bounced once; a hard bounce would replace it.
    (message,) = await message_rows(db)
    assert message.bounce == "soft_bounce"


async def test_one_account_cannot_report_for_another(client, account, other_account, clock, db):
    await configure(client, account, "mailgun", MAILGUN_KEY)
    await configure(client, other_account, "mailgun", "key-of-the-other-account-0001")
    body = mailgun_event(EMAIL, clock.now(), event_id="mg-shared-1")
    # Signed with the first account's key, sent to the other's URL: refused.
    refused = await post(client, other_account, "mailgun", body)
    assert refused.status_code == 401, refused.text
    assert (await written(db)).outcomes == 0

    accepted = await post(client, account, "mailgun", body)
    assert accepted.status_code == 200, accepted.text
    other_body = mailgun_event(
        EMAIL, clock.now(), event_id="mg-shared-1", key="key-of-the-other-account-0001"
    )
    # The same provider event id in another account is another account's report.
    theirs = await post(client, other_account, "mailgun", other_body)
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["reports"][0]["duplicate"] is False
    rows = await suppressions(db)
    assert sorted(r.account_id for r in rows) == sorted([account["id"], other_account["id"]])
    listed = await client.get("/v1/suppressions", headers=auth(other_account))
    assert [i["email"] for i in listed.json()["items"]] == [EMAIL]


async def test_ses_subscription_is_confirmed_after_its_signature(
    client, account, clock, certificates
):
    await configure(client, account, "ses", TOPIC_ARN)
    message = subscription_confirmation(clock.now())
    response = await post(client, account, "ses", message)
    assert response.status_code == 200, response.text
    assert response.json() == {"reports": [], "ignored": 0, "subscription_confirmed": True}
    assert certificates.asked == [CERT_URL, message["SubscribeURL"]]

    # Another topic's confirmation (validly signed by SNS) is not ours to confirm.
    other = subscription_confirmation(clock.now(), topic=TOPIC_ARN + "-other")
    refused = await post(client, account, "ses", other)
    assert refused.status_code == 401, refused.text
    assert other["SubscribeURL"] not in certificates.asked


async def test_ses_certificates_come_only_from_sns_hosts(client, account, clock, db, certificates):
    await configure(client, account, "ses", TOPIC_ARN)
    for url in (
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
    ):
        message = {**ses_notification(EMAIL, clock.now()), "SigningCertURL": url}
        response = await post(client, account, "ses", message)
        assert response.status_code == 401, (url, response.text)
    assert certificates.asked == []
    assert (await written(db)).outcomes == 0

    # Signature version 2 (SHA256withRSA) is accepted too.
    notification = ses_notification(EMAIL, clock.now())
    unsigned = {k: v for k, v in notification.items() if k not in ("Signature", "SignatureVersion")}
    v2 = sns_signed(unsigned, version="2")
    response = await post(client, account, "ses", v2)
    assert response.status_code == 200, response.text
    assert response.json()["reports"][0]["suppressed"] is True
    # A changed Message is no longer what AWS signed.
    tampered = {**v2, "Message": json.dumps({**json.loads(v2["Message"]), "x": 1})}
    assert (await post(client, account, "ses", tampered)).status_code == 401


async def test_stats_show_bounces_and_complaints_per_step(client, account, clock, dispatcher, db):
    await configure(client, account, "mailgun", MAILGUN_KEY)
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    emails = [f"buyer{i}@example.com" for i in range(4)]
    for i, email in enumerate(emails):
        body = event_now(clock, email=email, reference=f"ord-{i}")
        await ingest(client, account, clock, body)
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 4
    by_email = {m.to_email: m for m in await message_rows(db)}
    clock.advance(minutes=30)

    async def report(email: str, event: str, n: int, severity: str = "permanent") -> None:
        body = mailgun_event(
            email,
            clock.now(),
            event=event,
            severity=severity,
            message_id=by_email[email].message_id_header.strip("<>"),
            event_id=f"mg-{n}",
        )
        response = await post(client, account, "mailgun", body)
        assert response.status_code == 200, response.text
        assert response.json()["reports"][0]["message_id"] == by_email[email].id

    await report(emails[0], "failed", 1)
    await report(emails[1], "failed", 2, severity="temporary")
    await report(emails[1], "failed", 3, severity="temporary")  # the same follow-up: once
    await report(emails[2], "complained", 4)

    response = await client.get("/v1/stats", headers=auth(account))
    assert response.status_code == 200, response.text
    stats = response.json()
    overall = stats["overall"]
    assert (overall["followups_sent"], overall["bounces"], overall["complaints"]) == (4, 2, 1)
    assert overall["bounce_rate"] == 0.5 and overall["complaint_rate"] == 0.25
    step1, step2, _ = stats["steps"]
    assert (step1["step"], step1["bounces"], step1["complaints"]) == (1, 2, 1)
    assert step1["bounce_rate"] == 0.5
    assert (step2["bounces"], step2["bounce_rate"]) == (0, None)
    (campaign,) = stats["campaigns"]
    assert [s["complaints"] for s in campaign["steps"]] == [1, 0, 0]
