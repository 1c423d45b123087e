"""The dashboard in a real headless Chromium against a real ``leadflow serve`` (API and worker in
one process) on a loopback port, on SQLite and on PostgreSQL, sending to a real SMTP sink.

One browser and one server per database for the package; each test gets its own account and
its own browser context (cookies), so tests do not see each other's data. Package scope, not
session: Playwright's sync API keeps an event loop of its own while it runs, which the async
tests of other packages (pytest-asyncio) cannot share, so it must stop when tests/browser ends.
Screenshots of every screen go to ``build/screenshots/``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import (
    CHROMIUM,
    FAST,
    LABEL_CHECK,
    SCREENSHOTS,
    WAIT_MS,
    Server,
    SignedIn,
    _wait_for,
    sign_in,
)
from tests.fixtures.mail import SmtpSink
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url
from tests.support.served import (
    READY_SECONDS,
    _api_env,
    _migrate,
    _start,
    _stop,
    _wait_ready,
    _wait_started,
    run_async,
)
from tests.support.servers import free_port


@pytest.fixture(scope="session")
def wait_for() -> Any:
    """``wait_for(predicate, what)``: poll (bounded) until the predicate holds."""
    return _wait_for


def _serve(backend: str, smtp: SmtpSink, workdir: Path) -> Iterator[Server]:
    pg_name: str | None = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'leadflow-{secrets.token_hex(4)}.db'}"
    else:
        run_async(pg_or_skip())
        pg_name = run_async(create_pg_database())
        url = pg_url(pg_name)
        run_async(_migrate(url))
    port = free_port()
    env = _api_env(url, port, {**FAST, "smtp_url": smtp.url})
    log = workdir / f"leadflow-serve-{port}.log"
    proc = _start("serve", env, log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_SECONDS
        _wait_ready(proc, base, log, deadline)
        _wait_started(proc, log, deadline)
        yield Server(base, url, env, log, backend, smtp, process=proc)
    finally:
        _stop([proc])
        if pg_name is not None:
            run_async(drop_pg_database(pg_name))


@pytest.fixture(scope="package")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="package")
def browser_workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="leadflow-browser-") as path:
        yield Path(path)


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, smtp: SmtpSink, browser_workdir: Path
) -> Iterator[Server]:
    """``leadflow serve`` (API, worker, dashboard) shared by tests/browser, per database."""
    yield from _serve(request.param, smtp, browser_workdir)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_served(
    request: pytest.FixtureRequest, smtp: SmtpSink, browser_workdir: Path
) -> Iterator[Server]:
    """A server of its own on an empty database: the first run."""
    yield from _serve(request.param, smtp, browser_workdir)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (``playwright install`` cannot download here)."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium to run tests/browser"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, served: Server) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the served app, console errors collected."""
    context = browser.new_context(base_url=served.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,  # type: ignore[attr-defined]
    )
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))  # type: ignore[attr-defined]
    try:
        yield page
        refused = [e for e in page.console_errors if "Content Security Policy" in e]  # type: ignore[attr-defined]
        assert refused == [], f"the page broke its own Content-Security-Policy: {refused}"
    finally:
        context.close()


@pytest.fixture
def page_signed_in(page: Any, served: Server) -> SignedIn:
    """A new account, signed in with its API key, on the overview. Follow-ups may go out at
    once (no minimum delay), so a test sees the worker's work within seconds."""
    account = served.create_account(f"Shop {secrets.token_hex(3)}")
    account.settings(
        min_delays={
            "abandoned_checkout": "PT0S",
            "unfinished_order": "PT0S",
            "trial": "PT0S",
            "renewal": "PT0S",
        }
    )
    sign_in(page, account)
    return SignedIn(page, account, served)


@pytest.fixture(scope="session")
def shot() -> Any:
    """``shot(page, name)``: a full-page PNG in build/screenshots/ (the README names it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def unlabelled() -> Any:
    """``unlabelled(page)``: every visible input, select, textarea or button without a label."""
    return lambda page: page.evaluate(LABEL_CHECK)
