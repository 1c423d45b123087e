"""The Notifications screen against a real receiver on loopback: an endpoint created (its secret
shown once, and it verifies what arrives), a test ping and its outcome, the delivery log with
its filters, redeliver, rotate, disable and delete."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect

from leadflow.kit.signing import signature_matches
from tests.browser.helpers import SignedIn
from tests.support.servers import free_port


class Receiver:
    """An HTTP server on 127.0.0.1 that records every notification and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.received.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/leadflow"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def types(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["type"] for _, body in self.received]

    def verified(self, secret: str) -> bool:
        """Every notification carries a signature made with ``secret``."""
        with self.lock:
            return bool(self.received) and all(
                signature_matches(
                    [secret],
                    headers["webhook-id"],
                    int(headers["webhook-timestamp"]),
                    body,
                    headers["webhook-signature"],
                )
                for headers, body in self.received
            )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_endpoint_ping_log_and_redeliver(
    page_signed_in: SignedIn, receiver: Receiver, shot: Any, wait_for: Any, unlabelled: Any
) -> None:
    page, account = page_signed_in.page, page_signed_in.account
    page.console_errors.clear()  # the sign-in page's own 401
    page.goto("/dashboard/#/notifications")
    expect(page.get_by_test_id("endpoint-list").get_by_test_id("empty")).to_contain_text(
        "No endpoint yet"
    )
    expect(page.get_by_test_id("delivery-results")).to_contain_text("No delivery yet")

    # Not a URL: refused next to the field.
    form = page.get_by_test_id("endpoint-form")
    page.get_by_label("URL").fill("not a url")
    page.get_by_test_id("endpoint-create").click()
    expect(form.locator('[data-error-for="url"]')).to_be_visible()

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Our CRM")
    page.get_by_label("lead.captured").check()
    page.get_by_test_id("endpoint-create").click()
    secret_box = page.get_by_test_id("secret-once")
    expect(secret_box).to_contain_text("not shown again")
    secret = secret_box.get_by_test_id("secret-value").inner_text().strip()
    assert secret.startswith("whsec_")
    endpoint = page.get_by_test_id("endpoint").filter(has_text=receiver.url)
    expect(endpoint).to_contain_text("Events: lead.captured")
    expect(form.locator(".field-error:visible")).to_have_count(0)

    # The ping goes out now, signed with the secret just shown; the outcome is on the card.
    endpoint.get_by_test_id("endpoint-ping").click()
    expect(endpoint.get_by_test_id("ping-result")).to_have_text(
        "Ping delivered: the endpoint answered HTTP 200."
    )
    assert receiver.types() == ["ping"]
    assert receiver.verified(secret)
    rows = page.get_by_test_id("delivery-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-status", "delivered")

    # A captured lead is notified by the worker and joins the log.
    account.event(reference=f"chk_{secrets.token_hex(3)}")
    wait_for(lambda: "lead.captured" in receiver.types(), "the lead.captured notification")
    page.get_by_test_id("delivery-refresh").click()
    expect(rows).to_have_count(2)
    page.get_by_label("Event").select_option("lead.captured")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("lead.captured")
    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_test_id("delivery-results")).to_contain_text(
        "No delivery matches these filters"
    )
    page.get_by_label("Status").select_option("delivered")
    page.get_by_label("Event").select_option("ping")
    expect(rows).to_have_count(1)

    # Redeliver: queued again with the same webhook-id, and the worker delivers it.
    rows.first.get_by_test_id("delivery-redeliver").click()
    expect(page.get_by_test_id("toast")).to_have_text("Queued for delivery again")
    wait_for(lambda: receiver.types().count("ping") == 2, "the redelivered ping")
    with receiver.lock:
        ids = [h["webhook-id"] for h, body in receiver.received if b'"ping"' in body]
    assert len(set(ids)) == 1
    page.get_by_test_id("delivery-refresh").click()
    expect(rows.first.get_by_test_id("delivery-attempts")).to_have_text("1")
    shot(page, "notifications")
    assert unlabelled(page) == []

    # Rotate: a new secret, shown once.
    endpoint.get_by_test_id("endpoint-rotate").click()
    endpoint.get_by_test_id("endpoint-rotate-confirm").click()
    expect(secret_box.get_by_test_id("secret-value")).not_to_have_text(secret)
    rotated = secret_box.get_by_test_id("secret-value").inner_text().strip()
    assert rotated.startswith("whsec_")

    # Disable, then delete (asked again in place): the list is empty again.
    endpoint.get_by_test_id("endpoint-toggle").click()
    expect(endpoint.get_by_test_id("endpoint-state")).to_have_text("disabled")
    endpoints = account.call("GET", "/v1/iln/endpoints")["items"]
    assert [e["enabled"] for e in endpoints] == [False]
    endpoint.get_by_test_id("endpoint-delete").click()
    endpoint.get_by_test_id("endpoint-delete-confirm").click()
    expect(page.get_by_test_id("endpoint")).to_have_count(0)
    assert account.call("GET", "/v1/iln/endpoints")["items"] == []
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]


def test_ping_to_a_failing_endpoint_shows_the_failure(page_signed_in: SignedIn) -> None:
    page = page_signed_in.page
    closed = free_port()  # nothing listens there
    page.goto("/dashboard/#/notifications")
    page.get_by_label("URL").fill(f"http://127.0.0.1:{closed}/gone")
    page.get_by_test_id("endpoint-create").click()
    endpoint = page.get_by_test_id("endpoint")
    endpoint.get_by_test_id("endpoint-ping").click()
    result = endpoint.get_by_test_id("ping-result")
    expect(result).to_have_attribute("data-status", "failed")
    expect(result).to_contain_text("Ping failed: no answer")
    expect(page.get_by_test_id("delivery-row").first).to_have_attribute("data-status", "failed")
