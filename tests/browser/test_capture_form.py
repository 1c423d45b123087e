"""``form.js`` in a real Chromium, pasted into a merchant's page served from another origin:
it renders the form, posts the sign-up across origins (CORS for the allowed origin only), and
the lead arrives in the served app."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import Server
from tests.support.servers import free_port


class _Shop(BaseHTTPRequestHandler):
    """The merchant's page: any path answers it, with the snippet pasted in."""

    script = ""

    def do_GET(self) -> None:
        body = (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>News</h1>"
            f'<script src="{self.script}"></script></body></html>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[int]:
    """The merchant's site on a loopback port of its own (a page routed by the browser itself
    would count as a public address, which Chromium does not let reach a loopback one)."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sign_up(browser: Any, url: str, email: str) -> Any:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        form = page.locator("form[data-leadflow]")
        expect(form).to_contain_text("Email me news")
        form.locator("input[name=email]").fill(email)
        form.locator("input[name=consent]").check()
        form.locator("button").click()
        expect(form).to_have_attribute("data-leadflow-status", re.compile("received|error"))
        return form.get_attribute("data-leadflow-status")
    finally:
        context.close()


def test_form_js_signs_up_from_the_merchants_page(browser: Any, served: Server, shop: int) -> None:
    port = shop
    allowed, foreign = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    account = served.create_account(f"Shop {secrets.token_hex(3)}")
    account.call(
        "PUT",
        "/v1/capture/settings",
        json={"allowed_origins": [allowed], "consent_text": "Email me news"},
    )
    key = account.call("GET", "/v1/capture/settings")["publishable_key"]
    _Shop.script = f"{served.base_url}/v1/capture/{key}/form.js"

    assert _sign_up(browser, f"{allowed}/signup", "browser@example.com") == "received"
    (lead,) = account.call("GET", "/v1/leads")["items"]
    assert lead["source_type"] == "opt_in"
    assert lead["customer"]["email"] == "browser@example.com"

    # The same snippet on a page of an origin the account did not allow: the browser keeps
    # the cross-origin answer from the page, and the form says so.
    assert _sign_up(browser, f"{foreign}/signup", "other@example.com") == "error"
