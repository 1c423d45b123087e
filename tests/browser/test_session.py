"""Signing in and out of the dashboard: API key, login link, sign-out, an expired session, a
state change without the CSRF token, and the page's own safety headers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.helpers import Server, SignedIn


def test_root_redirects_and_the_page_is_locked_down(served: Server) -> None:
    root = httpx.get(f"{served.base_url}/", follow_redirects=False, timeout=10)
    assert root.status_code == 307
    assert root.headers["location"] == "/dashboard/"
    page = httpx.get(f"{served.base_url}/dashboard/", timeout=10)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "<script" in page.text and "<script>" not in page.text  # no inline script
    script = httpx.get(f"{served.base_url}/dashboard/static/app.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    again = httpx.get(
        f"{served.base_url}/dashboard/static/app.js",
        headers={"If-None-Match": script.headers["etag"]},
        timeout=10,
    )
    assert again.status_code == 304
    escape = httpx.get(f"{served.base_url}/dashboard/static/..%2F..%2Fdashboard.py", timeout=10)
    assert escape.status_code == 404


def test_sign_in_with_api_key_then_sign_out(page_signed_in: SignedIn, shot: Any) -> None:
    page = page_signed_in.page
    expect(page.get_by_test_id("account-name")).to_have_text(page_signed_in.account.name)
    shot(page, "overview")
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("login-notice")).to_have_text("You are signed out.")
    # The session is gone on the server too: the page cannot get back in by going there.
    page.goto("/dashboard/#/overview")
    expect(page.get_by_role("heading", name="Sign in to leadflow")).to_be_visible()
    shot(page, "login")
    assert page.console_errors == [] or all("401" in e for e in page.console_errors)


def test_login_link_signs_in_once(page: Any, served: Server) -> None:
    account = served.create_account("Linked Shop")
    link = json.loads(served.cli("accounts", "login-link", account.id, "--json"))["url"]
    assert "/dashboard/#/login?token=" in link
    page.goto(link)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("account-name")).to_have_text("Linked Shop")
    assert "token=" not in page.url  # the token leaves the address bar once used
    # Single use: a second browser with the same link is refused.
    other = page.context.browser.new_context(base_url=served.base_url)
    try:
        second = other.new_page()
        second.goto(link)
        expect(second.get_by_test_id("login-notice")).to_contain_text("invalid, used or expired")
    finally:
        other.close()


def test_expired_session_sends_back_to_sign_in(page_signed_in: SignedIn) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page_signed_in.server.sql(
        "UPDATE dashboard_sessions SET expires_at = :past WHERE account_id = :account",
        past=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        account=account.id,
    )
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_test_id("login-notice")).to_have_text(
        "Your session has expired. Sign in again."
    )
    page.get_by_label("API key").fill(account.api_key)
    page.get_by_role("button", name="Sign in").click()
    # Back where the merchant was going.
    expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()


def test_state_change_without_csrf_token_is_refused(page_signed_in: SignedIn) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    answer = page.evaluate(
        """async () => {
          const response = await fetch('/v1/settings', {
            method: 'PUT', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({lead_management_enabled: false}),
          });
          return {status: response.status, body: await response.json()};
        }"""
    )
    assert answer["status"] == 403
    assert answer["body"]["code"] == "csrf_failed"
    assert account.call("GET", "/v1/settings")["lead_management_enabled"] is True
    # The page's own requests carry the token: the same change through the switch works.
    page.get_by_role("switch", name="Lead management").click()
    expect(page.get_by_test_id("switch-state")).to_have_text("off")
    assert account.call("GET", "/v1/settings")["lead_management_enabled"] is False
