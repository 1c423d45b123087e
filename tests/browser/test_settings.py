"""The Settings screen: sending rules saved (and refused next to the field), an API key shown
once and revoked, the webhook secret rotated, and the integration URLs to paste."""

from __future__ import annotations

import json
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.helpers import SignedIn
from tests.support.events import lead_event, signed_headers


def test_sending_rules_saved_and_refused_next_to_the_field(
    page_signed_in: SignedIn, shot: Any, unlabelled: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page.console_errors.clear()  # the sign-in page's own 401
    page.goto("/dashboard/#/settings")
    form = page.get_by_test_id("settings-form")
    expect(page.get_by_label("Time zone")).to_have_value("UTC")

    # A value the API refuses: the message sits under the very input, nothing is saved.
    page.get_by_label("Trial").fill("2 hours")
    expect(page.get_by_test_id("duration-human-trial")).to_contain_text("not a duration")
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_test_id("settings-save").click()
    trial_error = form.locator('[data-error-for="min_delays.trial"]')
    expect(trial_error).to_be_visible()
    expect(trial_error).to_contain_text("ISO 8601")
    expect(form.locator('[data-error-for="timezone"]')).to_be_visible()
    expect(page.get_by_label("Trial")).to_have_attribute("aria-invalid", "true")
    assert account.call("GET", "/v1/settings")["timezone"] == "UTC"
    shot(page, "settings-error")
    assert unlabelled(page) == []

    # Fixed: saved, and shown back human-readably.
    page.get_by_label("Trial").fill("P1DT12H")
    expect(page.get_by_test_id("duration-human-trial")).to_have_text("= 1 day 12 hours")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Abandoned checkout").fill("pt2h")
    page.get_by_label("Sender name").fill("Acme Shop")
    page.get_by_label("Sender email").fill("shop@example.com")
    cap = page.get_by_label("At most one follow-up per address every (hours)")
    cap.fill("6")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("toast")).to_have_text("Settings saved")
    expect(page.get_by_test_id("duration-human-abandoned_checkout")).to_have_text("= 2 hours")
    saved = account.call("GET", "/v1/settings")
    assert saved["timezone"] == "Europe/Berlin"
    assert saved["min_delays"]["abandoned_checkout"] == "PT2H"
    assert saved["min_delays"]["trial"] == "P1DT12H"
    assert (saved["sender_name"], saved["sender_email"]) == ("Acme Shop", "shop@example.com")
    assert saved["min_hours_between_emails"] == 6
    expect(form.locator(".field-error:visible")).to_have_count(0)

    # The page shows what the server holds after a reload.
    page.reload()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    expect(page.get_by_label("Abandoned checkout")).to_have_value("PT2H")
    expect(cap).to_have_value("6")
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]


def test_api_key_shown_once_and_revoked(page_signed_in: SignedIn, shot: Any) -> None:
    page, server = page_signed_in.page, page_signed_in.server
    page.goto("/dashboard/#/settings")
    rows = page.get_by_test_id("api-key-row")
    expect(rows).to_have_count(1)

    page.get_by_label("New key's name").fill("zapier")
    page.get_by_test_id("api-key-create").click()
    shown = page.get_by_test_id("api-key-created").get_by_test_id("secret-value")
    expect(shown).to_contain_text("lf_")
    key = shown.inner_text().strip()
    expect(rows).to_have_count(2)
    zapier = rows.filter(has_text="zapier")
    expect(zapier).to_contain_text(key[:8])
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server.base_url}/v1/settings", headers=bearer).status_code == 200
    shot(page, "settings-api-key")

    # Shown once: a fresh visit lists the key by name and prefix only.
    page.reload()
    expect(rows).to_have_count(2)
    expect(page.get_by_text(key)).to_have_count(0)

    zapier.get_by_test_id("api-key-revoke").click()
    zapier.get_by_test_id("api-key-revoke-confirm").click()
    expect(rows).to_have_count(1)
    assert httpx.get(f"{server.base_url}/v1/settings", headers=bearer).status_code == 401

    # The last key cannot go: the refusal is shown in its row.
    rows.first.get_by_test_id("api-key-revoke").click()
    rows.first.get_by_test_id("api-key-revoke-confirm").click()
    expect(rows.first.get_by_test_id("screen-problem")).to_contain_text("only active API key")
    expect(rows).to_have_count(1)


def test_webhook_secret_and_integrations(page_signed_in: SignedIn, shot: Any) -> None:
    page, account, server = page_signed_in.page, page_signed_in.account, page_signed_in.server
    page.goto("/dashboard/#/settings")
    base = server.base_url
    expect(page.get_by_test_id("events-url")).to_have_text(
        f"{base}/v1/webhooks/{account.id}/events"
    )
    for platform in ("stripe", "shopify", "woocommerce", "paypro"):
        expect(page.get_by_test_id(f"integration-url-{platform}")).to_have_text(
            f"{base}/v1/webhooks/{account.id}/{platform}"
        )

    stripe = page.locator('[data-testid="integration"][data-platform="stripe"]')
    expect(stripe.get_by_test_id("integration-state")).to_have_text("not configured")
    stripe.get_by_label("Stripe: Signing secret (whsec_…)").fill("whsec_stripe_test_secret")
    stripe.get_by_test_id("integration-save-stripe").click()
    expect(stripe.get_by_test_id("integration-state")).to_have_text("configured")
    configured = account.call("GET", "/v1/integrations")["items"]
    assert [i["configured"] for i in configured if i["platform"] == "stripe"] == [True]

    # PayPro Global needs its validation key too: the refusal names the field.
    paypro = page.locator('[data-testid="integration"][data-platform="paypro"]')
    paypro.get_by_label("PayPro Global: Secret key (verifies HASH)").fill("paypro-secret")
    paypro.get_by_test_id("integration-save-paypro").click()
    expect(paypro.get_by_test_id("form-problem")).to_be_visible()
    expect(paypro.get_by_test_id("integration-state")).to_have_text("not configured")

    stripe.get_by_test_id("integration-delete-stripe").click()
    expect(stripe.get_by_test_id("integration-state")).to_have_text("not configured")

    # A new webhook secret, shown once, signs events from now on.
    page.get_by_test_id("webhook-secret-rotate").click()
    page.get_by_test_id("webhook-secret-rotate-confirm").click()
    secret = page.get_by_test_id("webhook-secret-slot").get_by_test_id("secret-value")
    expect(secret).to_contain_text("whsec_")
    new_secret = secret.inner_text().strip()
    assert new_secret != account.webhook_secret
    shot(page, "settings")
    body = json.dumps(lead_event(reference="chk_rotated", occurred_at="2026-01-15T11:00:00Z"))
    response = httpx.post(
        f"{base}/v1/webhooks/{account.id}/events",
        content=body.encode(),
        headers=signed_headers(new_secret, body.encode()),
        timeout=15,
    )
    assert response.status_code in (200, 201, 202), response.text
