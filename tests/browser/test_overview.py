"""The overview: the lead-management switch holds follow-ups and releases them (real SMTP),
lead groups count and switch, and the figures and charts follow webhooks live (SSE)."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import SignedIn

SENT_TODAY = re.compile(r"Follow-ups sent · \d{4}-\d\d-\d\d: 1 per day")


def _sent_to(signed: SignedIn, address: str) -> list[Any]:
    return [m for m in signed.server.smtp.messages if address in str(m["To"])]


def test_switch_off_holds_a_due_follow_up_and_on_sends_it(
    page_signed_in: SignedIn, shot: Any, wait_for: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    account.campaign()
    switch = page.get_by_role("switch", name="Lead management")
    expect(switch).to_be_checked()
    switch.click()
    expect(page.get_by_test_id("switch-state")).to_have_text("off")
    expect(page.get_by_test_id("switch-panel")).to_contain_text("nothing is lost")
    assert account.call("GET", "/v1/settings")["lead_management_enabled"] is False
    shot(page, "overview-switched-off")

    reference = f"chk_{secrets.token_hex(4)}"
    address = f"{reference}@example.com"
    account.event(reference=reference)
    # The lead is captured and counted while the switch is off: nothing is lost.
    expect(page.get_by_test_id("group-count-abandoned_checkout")).to_have_text("1")
    time.sleep(1.5)  # five dispatch rounds: the follow-up is due, and held
    assert _sent_to(page_signed_in, address) == []

    switch.click()
    expect(page.get_by_test_id("switch-state")).to_have_text("on")
    assert account.call("GET", "/v1/settings")["lead_management_enabled"] is True
    wait_for(lambda: _sent_to(page_signed_in, address), f"the held follow-up to {address}")


def test_lead_group_status_toggle(page_signed_in: SignedIn) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    toggle = page.get_by_role("switch", name="Trial users active")
    expect(toggle).to_be_checked()
    toggle.click()
    expect(page.get_by_test_id("group-trial")).to_contain_text("inactive")
    groups = {g["key"]: g["status"] for g in account.call("GET", "/v1/lead-groups")["items"]}
    assert groups["trial"] == "inactive"
    assert groups["abandoned_checkout"] == "active"


def test_webhook_and_purchase_move_counts_and_charts_without_reload(
    page_signed_in: SignedIn, shot: Any, unlabelled: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    account.campaign()
    page.reload()  # the campaign exists; from here on nothing reloads the page
    expect(page.get_by_test_id("live")).to_have_text("Live")
    page.evaluate("() => { window.notReloaded = true; }")
    expect(page.get_by_test_id("figure-followups")).to_contain_text("0")

    reference = f"chk_{secrets.token_hex(4)}"
    account.event(reference=reference, amount="49.00", currency="EUR")
    expect(page.get_by_test_id("group-count-abandoned_checkout")).to_have_text("1")
    # The worker sends the follow-up; the stream reports it; figures and charts redraw.
    expect(page.get_by_test_id("figure-followups")).to_contain_text("1")
    expect(page.get_by_test_id("figure-targeted")).to_contain_text("1")
    expect(
        page.locator("[data-testid=chart-activity] circle title").filter(has_text=SENT_TODAY)
    ).to_have_count(1)
    expect(page.locator("[data-testid=chart-steps-sent] rect title").first).to_contain_text(
        "Step 1: 1"
    )

    account.event(
        type="order.completed",
        reference=reference,
        amount="49.00",
        currency="EUR",
        products=[],
    )
    expect(page.get_by_test_id("figure-converted")).to_contain_text("1")
    expect(page.get_by_test_id("figure-rate")).to_have_text(re.compile(r"100\.0%"))
    expect(page.get_by_test_id("figure-value-EUR")).to_contain_text("49.00")
    expect(page.get_by_test_id("chart-value-EUR")).to_be_visible()
    expect(page.get_by_test_id("campaign-figures")).to_contain_text("100.0%")
    assert page.evaluate("() => window.notReloaded") is True
    assert int(page.evaluate("() => document.getElementById('view').dataset.updates")) >= 2
    assert unlabelled(page) == []
    shot(page, "overview-live")
