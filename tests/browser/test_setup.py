"""The first run: ``leadflow serve`` on an empty database prints a setup link; opening it
creates the account, signs in and shows the API key and webhook secret once."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.helpers import Server


def test_setup_link_creates_the_first_account(
    browser: Any, fresh_served: Server, shot: Any, unlabelled: Any
) -> None:
    link = fresh_served.setup_link()
    context = browser.new_context(base_url=fresh_served.base_url)
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", name="Welcome to leadflow")).to_be_visible()
        assert "token=" not in page.url
        assert unlabelled(page) == []
        shot(page, "setup")
        page.get_by_label("Shop or company name").fill("Fresh Shop")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("heading", name="Fresh Shop is ready")).to_be_visible()
        api_key = page.get_by_test_id("api-key-once").input_value()
        secret = page.get_by_test_id("webhook-secret-once").input_value()
        assert api_key.startswith("lf_") and secret.startswith("whsec_")
        expect(page.locator("pre.command")).to_contain_text("leadflow events send-test acc_")
        shot(page, "setup-done")
        page.get_by_test_id("setup-continue").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_test_id("account-name")).to_have_text("Fresh Shop")
        expect(page.get_by_test_id("empty")).to_contain_text("No leads yet")
        # The key shown once works for the JSON API.
        settings = httpx.get(
            f"{fresh_served.base_url}/v1/settings",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert settings.status_code == 200 and settings.json()["name"] == "Fresh Shop"

        # The link is single use.
        again = context.new_page()
        again.goto(link)
        again.get_by_label("Shop or company name").fill("Second Shop")
        again.get_by_role("button", name="Create account").click()
        expect(again.get_by_test_id("form-problem")).to_contain_text("sign in instead")
    finally:
        context.close()
