"""The Leads screen: the empty state, a lead from a signed webhook, filters, paging, and one
lead's page with its events, the follow-up the worker sent and the purchase that converted it."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.helpers import Account, SignedIn
from tests.support.events import iso, lead_event, signed_headers


def post_batch(account: Account, events: list[dict[str, Any]]) -> None:
    """Many leads cheaply: one signed batch through real ingestion."""
    body = json.dumps({"events": events}).encode()
    response = httpx.post(
        f"{account.server.base_url}/v1/webhooks/{account.id}/events/batch",
        content=body,
        headers=signed_headers(account.webhook_secret, body),
        timeout=15,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.text


def noon(days_ago: int) -> dt.datetime:
    """Midday (UTC, the account's time zone) some days back: well inside that day."""
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=days_ago)


def test_leads_list_empty_state_filters_and_paging(
    page_signed_in: SignedIn, shot: Any, unlabelled: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page.console_errors.clear()  # the sign-in page's own 401
    page.goto("/dashboard/#/leads")
    empty = page.get_by_test_id("leads-empty")
    expect(empty).to_contain_text("No leads yet: send a test event")
    command = empty.locator("pre.command").first
    expect(command).to_have_text(f"leadflow events send-test {account.id}")
    expect(page.get_by_test_id("leads-empty-curl")).to_contain_text(
        f"/v1/webhooks/{account.id}/events"
    )
    shot(page, "leads-empty")

    # The command shown works as written: its test lead is listed on the next visit.
    program, *args = command.inner_text().split()
    assert program == "leadflow"
    page_signed_in.server.cli(*args)
    page.reload()
    rows = page.get_by_test_id("lead-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("jane.doe@example.com")

    # A signed webhook posted by the test: listed too, newest first.
    account.event(type="trial.started", reference="trial_1", email="trial@example.com")
    page.reload()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("trial@example.com")
    expect(rows.first.get_by_test_id("lead-source")).to_have_text("Trial")

    # Seven abandoned checkouts on two earlier days, in one batch.
    three_days_ago, two_days_ago = noon(3), noon(2)
    events = [
        {
            "id": f"batch_{secrets.token_hex(4)}",
            **lead_event(reference=f"chk_{n}", occurred_at=iso(when)),
        }
        for n, when in enumerate([three_days_ago] * 3 + [two_days_ago] * 4)
    ]
    post_batch(account, events)

    # Pages of five: the first five, then "Load more" brings the rest and disappears.
    page.goto("/dashboard/#/leads?limit=5")
    expect(rows).to_have_count(5)
    expect(page.get_by_test_id("lead-count")).to_have_text("5 leads shown, more below")
    page.get_by_test_id("lead-load-more").focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(9)
    expect(rows.nth(5).get_by_test_id("lead-link")).to_be_focused()
    expect(page.get_by_test_id("lead-load-more")).to_have_count(0)
    shot(page, "leads")
    assert unlabelled(page) == []

    # By source: choosing it applies at once, and the address keeps the filter.
    page.get_by_label("Source").select_option("trial")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("trial@example.com")
    assert "source_type=trial" in page.url

    # By captured day (days in the account's time zone), on every source again.
    page.get_by_label("Source").select_option("")
    day = three_days_ago.date().isoformat()
    page.get_by_label("Captured from").fill(day)
    page.get_by_label("Captured through").fill(day)
    expect(rows).to_have_count(3)
    for row in rows.all():
        expect(row.get_by_test_id("lead-source")).to_have_text("Abandoned checkout")
    page.get_by_label("Captured through").fill(two_days_ago.date().isoformat())
    expect(rows).to_have_count(5)  # the page size holds under filters too
    page.get_by_test_id("lead-load-more").click()
    expect(rows).to_have_count(7)
    expect(page.get_by_test_id("lead-count")).to_have_text("7 leads shown")
    expect(page.get_by_test_id("lead-load-more")).to_have_count(0)

    # By email, then a search that matches nothing says so.
    page.get_by_test_id("lead-filter-clear").click()
    page.get_by_label("Email").fill("chk_2@example.com")
    page.get_by_label("Email").press("Enter")
    expect(rows).to_have_count(1)
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_test_id("lead-filter-apply").click()
    expect(page.get_by_test_id("empty")).to_contain_text("No lead matches these filters")
    assert page.console_errors == []


def test_lead_page_shows_events_followup_and_conversion(
    page_signed_in: SignedIn, shot: Any, wait_for: Any, unlabelled: Any
) -> None:
    page, account, server = page_signed_in.page, page_signed_in.account, page_signed_in.server
    page.console_errors.clear()  # the sign-in page's own 401
    campaign = account.campaign()
    email = f"buyer-{secrets.token_hex(3)}@example.com"
    lead_id = account.event(reference=f"chk_{secrets.token_hex(3)}", email=email)["lead_id"]
    reference = account.call("GET", f"/v1/leads/{lead_id}")["reference"]

    # The worker sends the follow-up to the real SMTP sink.
    wait_for(
        lambda: any(email in str(m["To"]) for m in server.smtp.messages), "the follow-up email"
    )
    wait_for(
        lambda: (account.call("GET", f"/v1/leads/{lead_id}").get("sequence") or {}).get(
            "followups"
        ),
        "the follow-up on the lead",
    )
    account.event(
        type="order.completed", reference=reference, email=email, amount="49.00", currency="EUR"
    )
    wait_for(
        lambda: account.call("GET", f"/v1/leads/{lead_id}")["status"] == "converted",
        "the conversion",
    )

    page.goto("/dashboard/#/leads")
    page.get_by_role("link", name=email).click()
    expect(page.get_by_test_id("lead-email")).to_contain_text(email)
    expect(page.get_by_test_id("lead-status").first).to_have_text("converted")

    events = page.get_by_test_id("event-row")
    expect(events).to_have_count(2)
    expect(events.filter(has_text="checkout.abandoned")).to_contain_text("captured the lead")
    expect(events.filter(has_text="order.completed")).to_contain_text("converted the lead")

    sequence = page.get_by_test_id("lead-sequence")
    expect(sequence.get_by_test_id("lead-campaign")).to_have_text(campaign["name"])
    expect(sequence.get_by_test_id("lead-variant")).to_have_text("A")
    followup = sequence.get_by_test_id("followup-row")
    expect(followup).to_have_count(1)
    expect(followup).to_have_attribute("data-status", "sent")
    sent = [m for m in server.smtp.messages if email in str(m["To"])]
    expect(followup).to_contain_text(str(sent[0]["Subject"]))

    conversion = page.get_by_test_id("lead-conversion")
    expect(conversion.get_by_test_id("conversion-value")).to_contain_text("49.00")
    credit = conversion.get_by_test_id("conversion-credit")
    expect(credit).to_contain_text(campaign["name"])
    expect(credit).to_contain_text("variant A")
    expect(credit).to_contain_text("follow-up 1")
    shot(page, "lead")
    assert unlabelled(page) == []

    page.get_by_test_id("lead-back").click()
    expect(page.get_by_test_id("lead-row")).to_have_count(1)
    assert page.console_errors == []
