"""The whole flow through real HTTP, a real database and a real SMTP server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from leadflow.models.leads import Lead
from tests.dispatch.helpers import (
    CUSTOM_STEP_2,
    THREE_STEPS,
    all_rows,
    conversions,
    enrollment,
    enrollments,
    event_now,
    html_part,
    links,
    messages,
    path_of,
    text_part,
    unsubscribe_link,
)
from tests.support.api import BASE_URL, put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest, post_event, purchase

GERMAN_SUBJECT_1 = "Sie haben etwas in Ihrem Warenkorb bei Acme Shop vergessen"
ENGLISH_SUBJECT_1 = "You left something in your cart at Acme Shop"


def _spaces(text: str) -> str:
    return text.replace("\xa0", " ").replace("\u202f", " ")


async def test_whole_flow_until_purchase(client, account, clock, dispatcher, smtp_sink, db):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    variant_id = campaign["variants"][0]["id"]
    # The account's minimum delay (3h) beats the step's own delay (2h).
    settings = await put_settings(client, account, min_delays={"abandoned_checkout": "PT3H"})
    assert settings["min_delays"]["abandoned_checkout"] == "PT3H"

    start = clock.now()
    result = await ingest(client, account, clock, event_now(clock))
    assert result["lead_status"] == "open"
    lead_id = result["lead_id"]

    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(hours=2)  # the step's PT2H: still below the account's minimum
    report = await dispatcher.run_once()
    assert report.sent == 0 and smtp_sink.messages == []
    clock.set(start + dt.timedelta(hours=3) - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).sent == 0
    assert smtp_sink.messages == []

    clock.set(start + dt.timedelta(hours=3))
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    (first,) = smtp_sink.messages
    step1_at = clock.now()

    # The received email, as a mailbox provider sees it.
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    assert first["From"] == "Acme Shop <leadflow@localhost>"
    assert first["To"] == "jane@example.com"
    assert smtp_sink.handler.envelopes[0].rcpt_tos == ["jane@example.com"]
    assert first["Subject"] == GERMAN_SUBJECT_1
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = unsubscribe_link(first)
    assert unsubscribe.startswith(f"{BASE_URL}/u/")
    (row1,) = await messages(db)
    assert row1.step == 1 and row1.status == "sent" and row1.sent_at == step1_at
    assert row1.subject == GERMAN_SUBJECT_1
    assert first["Message-ID"] == row1.message_id_header
    assert first["Message-ID"].startswith(f"<{row1.id}@") and first["Message-ID"].endswith(">")
    text, html = text_part(first), html_part(first)
    assert "Hallo Jane," in text and "Hallo Jane," in html
    assert "49,00 €" in _spaces(text) and "49,00 €" in _spaces(html)
    # The checkout link is tracked, in both parts; the shop's URL never appears directly.
    assert links(text, "c") and links(html, "c")
    assert "shop.example.com" not in text and "shop.example.com" not in html
    assert unsubscribe in text and unsubscribe in html.replace("&amp;", "&")
    # On the wire the headers are readable as such (not RFC 2047 encoded-words).
    raw = smtp_sink.handler.envelopes[0].content
    raw = raw.decode() if isinstance(raw, bytes) else raw
    assert f"List-Unsubscribe: <{unsubscribe}>" in raw.replace("\r\n", "\n")
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw

    # Step 2 (custom template) one day after step 1, not earlier.
    assert (await dispatcher.run_once()).claimed == 0
    clock.set(step1_at + dt.timedelta(days=1) - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).sent == 0
    clock.set(step1_at + dt.timedelta(days=1))
    assert (await dispatcher.run_once()).sent == 1
    assert len(smtp_sink.messages) == 2
    second = smtp_sink.messages[1]
    assert _spaces(second["Subject"]) == "Jane, your 49,00 € cart is waiting"
    text2, html2 = text_part(second), html_part(second)
    assert "Hi Jane, your cart of 49,00 €" in _spaces(text2)
    assert "Hi Jane, your cart of 49,00 €" in _spaces(html2)
    (click_url,) = links(text2, "c")
    assert f'href="{click_url}"' in html2
    assert second["Message-ID"] != first["Message-ID"]

    # The tracked link leads exactly to the lead's checkout.
    response = await client.get(path_of(click_url))
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/recover/chk_1?step=pay&x=1"

    # The purchase stops the sequence and is credited to step 2.
    clock.advance(hours=5)
    bought = await purchase(
        client, account, clock, amount="59.00", currency="EUR", email="jane@example.com"
    )
    assert bought == [lead_id]
    row2 = next(m for m in await messages(db) if m.step == 2)
    (conversion,) = await conversions(db)
    assert conversion.lead_id == lead_id
    assert conversion.campaign_id == campaign["id"]
    assert conversion.variant_id == variant_id
    assert conversion.message_id == row2.id
    assert conversion.step == 2
    assert conversion.amount == Decimal("59.00") and conversion.currency == "EUR"
    assert conversion.converted_at == clock.now()
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "converted"

    for _ in range(4):
        clock.advance(days=1)
        assert (await dispatcher.run_once()).sent == 0
    assert len(smtp_sink.messages) == 2
    assert [m.step for m in await messages(db)] == [1, 2]


async def test_german_and_english_leads_get_their_language(
    client, account, clock, dispatcher, smtp_sink
):
    await create_campaign(client, account, steps=THREE_STEPS[:1], status="active")
    await ingest(
        client,
        account,
        clock,
        event_now(clock, email="anna@example.de", reference="chk_de", language="de"),
    )
    await ingest(
        client,
        account,
        clock,
        event_now(clock, email="john@example.com", reference="chk_en", language="en-GB"),
    )
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 2
    by_to = {m["To"]: m for m in smtp_sink.messages}
    german, english = by_to["anna@example.de"], by_to["john@example.com"]
    assert german["Subject"] == GERMAN_SUBJECT_1
    assert english["Subject"] == ENGLISH_SUBJECT_1
    assert german["Subject"] != english["Subject"]
    assert "Hallo Jane," in text_part(german)
    assert "Hi Jane," in text_part(english)
    assert "49,00 €" in _spaces(text_part(german))
    assert "€49.00" in text_part(english)


async def test_min_delay_raised_after_enrollment_applies_at_send_time(
    client, account, clock, dispatcher, smtp_sink, db
):
    await create_campaign(client, account, steps=THREE_STEPS[:1], status="active")
    start = clock.now()
    await ingest(client, account, clock, event_now(clock))
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT3H"})
    clock.advance(hours=2)
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.rescheduled == 1
    assert (await enrollment(db)).next_due_at == start + dt.timedelta(hours=3)
    clock.advance(minutes=59)
    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(minutes=1)
    assert (await dispatcher.run_once()).sent == 1
    assert len(smtp_sink.messages) == 1


async def test_all_three_steps_then_completed(client, account, clock, dispatcher, smtp_sink, db):
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    for hours in (2, 24, 24):
        clock.advance(hours=hours)
        assert (await dispatcher.run_once()).sent == 1
    assert len(smtp_sink.messages) == 3
    third = smtp_sink.messages[2]
    assert third["Subject"] == "Letzte Chance: Ihr Warenkorb läuft bald ab"
    assert "SAVE10" in text_part(third) and "SAVE10" in html_part(third)
    assert "SAVE10" not in text_part(smtp_sink.messages[0])
    enr = await enrollment(db)
    assert enr.state == "completed" and enr.next_step == 4
    assert [(m.step, m.status) for m in await messages(db)] == [
        (1, "sent"),
        (2, "sent"),
        (3, "sent"),
    ]
    for _ in range(3):
        clock.advance(days=1)
        assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 3


async def test_duplicate_webhook_gives_one_lead_one_enrollment_one_email(
    client, account, clock, dispatcher, smtp_sink, db
):
    await create_campaign(client, account, steps=[THREE_STEPS[0], CUSTOM_STEP_2], status="active")
    body = event_now(clock)
    first = await post_event(client, account, body, clock=clock, msg_id="wh_dup_1")
    again = await post_event(client, account, body, clock=clock, msg_id="wh_dup_1")
    assert first.status_code == again.status_code == 200
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.json()["lead_id"] == first.json()["lead_id"]
    # The same checkout re-sent under a new webhook id updates the lead, nothing more.
    clock.advance(minutes=5)
    third = await post_event(client, account, event_now(clock), clock=clock, msg_id="wh_dup_2")
    assert third.json()["duplicate"] is False
    assert third.json()["lead_id"] == first.json()["lead_id"]

    assert len(await all_rows(db, Lead)) == 1
    assert len(await enrollments(db)) == 1
    clock.advance(hours=2)
    await dispatcher.run_once()
    assert len(smtp_sink.messages) == 1
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    assert len(await messages(db)) == 1


async def test_sender_settings_and_safe_personalisation(
    client, account, clock, dispatcher, smtp_sink, db
):
    await put_settings(client, account, sender_name="Grüne Läden", sender_email="hi@acme.example")
    await create_campaign(
        client, account, steps=[{**CUSTOM_STEP_2, "delay": "PT2H"}], status="active"
    )
    hostile = "<b>Jo</b>\r\nBcc: victim@example.org"
    await ingest(client, account, clock, event_now(clock, first_name=hostile, language="en"))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    (received,) = smtp_sink.messages
    assert received["From"] == "Grüne Läden <hi@acme.example>"
    assert received["Message-ID"].endswith("@acme.example>")
    # A name cannot add headers or recipients, nor markup to the HTML part.
    assert received["Bcc"] is None
    assert smtp_sink.handler.envelopes[0].rcpt_tos == ["jane@example.com"]
    assert "\n" not in received["Subject"] and received["Subject"].startswith("<b>Jo</b> Bcc:")
    html = html_part(received)
    assert "<b>Jo</b>" not in html and "&lt;b&gt;Jo&lt;/b&gt;" in html
    assert "<b>Jo</b>" in text_part(received)
    (row,) = await messages(db)
    assert row.subject == received["Subject"]
