"""A/B results: per set the leads, follow-ups, rate with its interval, probability of being
best, the state in words; "continue this variant" ends the test with that set."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.sync_api import expect

from tests.browser.helpers import SignedIn


def test_ab_results_and_continue_this_variant(
    page_signed_in: SignedIn, shot: Any, unlabelled: Any, wait_for: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    steps = [{"delay": "PT0S", "template": "abandoned_checkout/1"}]
    campaign = account.campaign(
        name="Carts: discount or not",
        variants=[{"name": "A", "steps": steps}, {"name": "B", "steps": steps}],
        ab_test={"criterion": "conversions", "threshold": 50, "keep_best": True},
    )
    for _ in range(4):
        account.event(reference=f"chk_{secrets.token_hex(4)}")

    def assigned() -> bool:
        result = account.call("GET", f"/v1/campaigns/{campaign['id']}/ab-test")
        return sum(v["targeted_leads"] for v in result["variants"]) == 4

    wait_for(assigned, "four leads with a follow-up")
    page.goto(f"/dashboard/#/campaigns/{campaign['id']}/ab")
    expect(page.get_by_test_id("ab-state")).to_have_text("running")
    expect(page.get_by_test_id("ab-state-words")).to_contain_text(
        "the first set to reach 50 conversions wins"
    )
    table = page.get_by_test_id("ab-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("svg.chart")).to_have_count(2)  # a rate interval per set
    assert unlabelled(page) == []
    shot(page, "ab-results")

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Continue this variant (set B)").click()
    expect(page.get_by_test_id("ab-state")).to_have_text("decided")
    expect(page.get_by_test_id("ab-state-words")).to_contain_text("set B won")
    expect(page.get_by_test_id("variant-row-B").get_by_test_id("winner")).to_be_visible()
    expect(page.get_by_role("button", name="Continue this variant (set A)")).to_be_disabled()
    result = account.call("GET", f"/v1/campaigns/{campaign['id']}/ab-test")
    winner = next(v for v in result["variants"] if v["name"] == "B")
    assert result["state"] == "decided"
    assert result["winner_variant_id"] == winner["variant_id"]
    shot(page, "ab-decided")
