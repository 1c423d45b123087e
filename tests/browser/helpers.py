"""What the browser tests share besides fixtures: the servers they drive, the accounts they
make, and checks run in the page (tests/browser/conftest.py holds the fixtures)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.fixtures.mail import SmtpSink
from tests.support.api import ADMIN_TOKEN
from tests.support.events import lead_event, signed_headers
from tests.support.served import (
    LEADFLOW,
    run_async,
)

CHROMIUM = Path(os.environ.get("LEADFLOW_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
SETUP_LINK = re.compile(r"(http://\S+/dashboard/#/setup\?token=\S+)")
# Short intervals so what the worker does shows up within a test's patience.
FAST = {
    "dispatch_interval_seconds": "0.3",
    "stats_stream_interval_seconds": "0.3",
    "webhook_account_cache_seconds": "0",
    "ab_eval_interval_seconds": "1",
    "iln_interval_seconds": "0.5",
    "iln_allow_private": "true",  # ILN receivers of the tests listen on loopback
}
WAIT_MS = 15_000  # the longest any expectation waits for the page
expect.set_options(timeout=WAIT_MS)


@dataclass
class Server:
    """A running ``leadflow serve``: its address, database, log and the SMTP sink it sends to."""

    base_url: str
    database_url: str
    env: dict[str, str]
    log: Path
    backend: str
    smtp: SmtpSink
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def create_account(self, name: str = "Acme Shop") -> Account:
        response = httpx.post(
            f"{self.base_url}/v1/admin/accounts",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return Account(self, response.json())

    def setup_link(self) -> str:
        """The first-run link ``leadflow serve`` printed (the database had no account)."""
        match = SETUP_LINK.search(self.log.read_text(errors="replace"))
        assert match, f"no setup link printed:\n{self.log.read_text(errors='replace')}"
        return match.group(1)

    def cli(self, *args: str) -> str:
        """``leadflow …`` against this server's database; its standard output."""
        done = subprocess.run(
            [*LEADFLOW, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def sql(self, statement: str, **params: Any) -> None:
        """One write straight to the database (to age a session past its expiry)."""
        from sqlalchemy import text

        from leadflow.kit.db import Database

        async def run() -> None:
            db = Database(self.database_url, pool_size=1)
            try:
                async with db.engine.begin() as conn:
                    await conn.execute(text(statement), params)
            finally:
                await db.dispose()

        run_async(run())


class Account:
    """An account of the served app, reached through its public API with the Bearer key."""

    def __init__(self, server: Server, created: dict[str, Any]) -> None:
        self.server = server
        self.data = created
        self.id: str = created["id"]
        self.name: str = created["name"]
        self.api_key: str = created["api_key"]
        self.webhook_secret: str = created["webhook_secret"]
        self.http = httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=15,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return None if response.status_code == 204 else response.json()

    def settings(self, **changes: Any) -> Any:
        return self.call("PUT", "/v1/settings", json=changes)

    def event(self, **fields: Any) -> dict[str, Any]:
        """A signed webhook event, happening now, through real ingestion."""
        fields.setdefault("occurred_at", dt.datetime.now(dt.UTC))
        body = json.dumps(lead_event(**fields)).encode()
        response = httpx.post(
            f"{self.server.base_url}/v1/webhooks/{self.id}/events",
            content=body,
            headers=signed_headers(self.webhook_secret, body),
            timeout=15,
        )
        assert response.status_code in (200, 201, 202), response.text
        result: dict[str, Any] = response.json()
        return result

    def campaign(self, **body: Any) -> dict[str, Any]:
        """An active campaign with one follow-up right away, unless told otherwise."""
        body.setdefault("name", f"Abandoned carts {secrets.token_hex(3)}")
        body.setdefault("source", "abandoned_checkout")
        body.setdefault("status", "active")
        body.setdefault(
            "variants",
            [{"name": "A", "steps": [{"delay": "PT0S", "template": "abandoned_checkout/1"}]}],
        )
        created: dict[str, Any] = self.call("POST", "/v1/campaigns", json=body)
        return created


def _wait_for(predicate: Any, what: str, seconds: float = WAIT_MS / 1000) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class SignedIn:
    page: Any
    account: Account
    server: Server


def sign_in(page: Any, account: Account) -> None:
    page.goto("/dashboard/#/login")
    page.get_by_label("API key").fill(account.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()


LABEL_CHECK = """
() => {
  const named = (el) => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && document.getElementById(by)) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    return el.tagName === 'BUTTON' && el.textContent.trim() !== '';
  };
  return [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.type !== 'hidden' && !el.closest('[hidden]') && !named(el))
    .map((el) => el.outerHTML.slice(0, 120));
}
"""
