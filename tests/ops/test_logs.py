"""JSON logs (``LEADFLOW_LOG_FORMAT=json``) from a real uvicorn server and a real worker: each
line parses, carries the request id the response carries, the account of an authenticated
request, the job of a worker run; no secret is ever written."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.logs import configure_logging
from leadflow.kit.mail import SmtpTransport
from leadflow.worker import build_worker
from tests.fixtures.mail import SmtpSink
from tests.ops.helpers import METRICS_TOKEN
from tests.support.api import ADMIN_TOKEN, TEST_SECRET_KEY, app_client
from tests.support.campaigns import create_campaign, step
from tests.support.events import event_body, signed_headers
from tests.support.servers import free_port

SMTP_PASSWORD = "smtp-pass-" + "x7Qz" * 4
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler", "apscheduler.scheduler")


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def all(self) -> list[dict[str, Any]]:
        """Every line, each one JSON object (a line that does not parse fails the test)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self, path: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.all()
            if line["logger"] == "uvicorn.access" and line.get("path", "").startswith(path)
        ]


@pytest.fixture
def json_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={
            "log_format": "json",
            "secret_key": SecretStr(TEST_SECRET_KEY),
            "smtp_url": SecretStr(
                f"smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{smtp_sink.port}?starttls=false"
            ),
        }
    )


@pytest.fixture
def lines(json_settings: Settings) -> Iterator[Lines]:
    """``configure_logging`` as ``leadflow`` runs it, writing into a buffer; the logging
    set-up of the test session is put back afterwards."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (list(lg.handlers), lg.propagate, lg.level, list(lg.filters))
        for name in _LOGGERS
        if (lg := logging.getLogger(name))
    }
    stream = io.StringIO()
    configure_logging(json_settings, stream=stream)
    try:
        yield Lines(stream)
    finally:
        root.handlers[:] = saved_root[1]
        root.setLevel(saved_root[0])
        for name, (handlers, propagate, level, filters) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
            logger.filters[:] = filters


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's Ctrl-C alone
        yield


@pytest.fixture
async def http(
    json_settings: Settings, clock: ManualClock, db: Database, lines: Lines
) -> AsyncIterator[httpx.AsyncClient]:
    """The API behind a real uvicorn on 127.0.0.1, run as ``leadflow api`` runs it (its
    logging left to ``configure_logging``: ``log_config=None``)."""
    app = create_app(json_settings, clock=clock, db=db, auto_migrate=False)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="info",
        access_log=True,
        lifespan="off",
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _account(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post(
        "/v1/admin/accounts",
        json={"name": "Acme"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_request_ids_and_accounts_in_json_lines(http, lines):
    generated = await http.get("/healthz")
    request_id = generated.headers["x-request-id"]
    assert len(request_id) == 32
    (line,) = lines.access("/healthz")
    assert line["request_id"] == request_id
    assert line["level"] == "INFO"
    assert (line["method"], line["status_code"]) == ("GET", 200)
    assert "timestamp" in line and "account_id" not in line

    # A client's id is kept (and echoed) when it is sane, on errors too.
    missing = await http.get("/v1/nothing-here", headers={"X-Request-ID": "trace-42.a:b"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "trace-42.a:b"
    assert lines.access("/v1/nothing-here")[0]["request_id"] == "trace-42.a:b"
    # ... and replaced when it is not: too long, or not plain text.
    for hostile in ("x" * 129, "a b", "<script>"):
        response = await http.get("/healthz", headers={"X-Request-ID": hostile})
        assert response.headers["x-request-id"] != hostile
        assert len(response.headers["x-request-id"]) == 32
    assert hostile not in lines.text

    account = await _account(http)
    auth = {"Authorization": f"Bearer {account['api_key']}"}
    listed = await http.get("/v1/leads", headers=auth)
    assert listed.status_code == 200
    (line,) = lines.access("/v1/leads")
    assert line["request_id"] == listed.headers["x-request-id"]
    assert line["account_id"] == account["id"]
    unauthenticated = await http.get("/v1/campaigns")
    assert unauthenticated.status_code == 401
    assert "x-request-id" in unauthenticated.headers
    (line,) = lines.access("/v1/campaigns")
    assert "account_id" not in line

    # Webhook intake knows its account once the id in the path is one.
    forged = await http.post(
        f"/v1/webhooks/{account['id']}/events",
        content=b"{}",
        headers={"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    (line,) = lines.access(f"/v1/webhooks/{account['id']}")
    assert line["account_id"] == account["id"]
    assert line["request_id"] == forged.headers["x-request-id"]


async def test_no_secret_is_ever_logged(http, lines, json_settings, clock):
    account = await _account(http)
    api_key, webhook_secret = account["api_key"], account["webhook_secret"]
    auth = {"Authorization": f"Bearer {api_key}"}
    # Secrets where clients put them by mistake: in the query (the access log writes it; the
    # route refuses the parameter it does not take, naming it, never echoing its value).
    misplaced = await http.get(f"/v1/leads?api_key={api_key}", headers=auth)
    assert misplaced.status_code == 422
    assert api_key not in misplaced.text
    wrong_key = "lf_" + secrets.token_urlsafe(32)
    bad = await http.get(f"/v1/leads?key={wrong_key}", headers={"Authorization": wrong_key})
    assert bad.status_code == 401
    endpoint = await http.post(
        "/v1/iln/endpoints", json={"url": "https://93.184.216.34/hook"}, headers=auth
    )
    assert endpoint.status_code == 201, endpoint.text
    endpoint_secret = endpoint.json()["secret"]
    body = json.dumps(event_body()).encode()
    signed = await http.post(
        f"/v1/webhooks/{account['id']}/events",
        content=body,
        headers=signed_headers(webhook_secret, body, timestamp=int(clock.now().timestamp())),
    )
    assert signed.status_code == 200, signed.text
    metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    # Code that logs what it should not: the settings' secrets, credentials, a traceback.
    smtp_url = json_settings.smtp_url.get_secret_value()
    log = logging.getLogger("leadflow.test")
    log.warning("sending through %s", smtp_url)
    log.warning("keys %s %s", TEST_SECRET_KEY, ADMIN_TOKEN)
    log.warning("headers %s", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    try:
        raise RuntimeError(f"signing with {endpoint_secret} for {api_key} failed")
    except RuntimeError:
        log.exception("delivery failed")

    text = lines.text
    assert len(lines.all()) >= 10
    assert text.count("[redacted]") >= 6, text
    assert "mailer:[redacted]@127.0.0.1" in text  # the URL stays readable
    for secret in (
        api_key,
        wrong_key,
        webhook_secret,
        endpoint_secret,
        ADMIN_TOKEN,
        TEST_SECRET_KEY,
        SMTP_PASSWORD,
        METRICS_TOKEN,
    ):
        assert secret not in text, secret


async def test_worker_lines_name_their_job_and_ids(
    client, account, clock, db, json_settings, smtp_sink, lines
):
    await create_campaign(client, account, status="active", steps=[step("PT2H")])
    body = event_body(occurred_at=clock.now().isoformat())
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events",
        content=json.dumps(body).encode(),
        headers=signed_headers(
            account["webhook_secret"],
            json.dumps(body).encode(),
            timestamp=int(clock.now().timestamp()),
        ),
    )
    assert response.status_code == 200, response.text
    clock.advance(dt.timedelta(hours=2))
    settings = json_settings.model_copy(update={"dispatch_interval_seconds": 0.05})
    transport = SmtpTransport(smtp_sink.url, pool_size=1, timeout=5)  # the sink takes no AUTH
    worker = build_worker(settings, db, clock, transport)
    worker.start()
    try:
        for _ in range(300):  # 15 s at most
            if any(line["message"].startswith("dispatch:") for line in lines.all()):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.aclose(grace=5)
    assert len(smtp_sink.messages) == 1, lines.text
    (line,) = [line for line in lines.all() if line["message"].startswith("dispatch:")]
    assert line["logger"] == "leadflow.dispatch"
    assert line["enrollment_ids_count"] == 1
    (enrollment_id,) = line["enrollment_ids"]
    assert enrollment_id.startswith("enr")
    assert "request_id" not in line
    assert SMTP_PASSWORD not in lines.text


def test_skipped_runs_are_quiet(lines):
    scheduler = logging.getLogger("apscheduler.scheduler")
    scheduler.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "dispatch (trigger: interval[0:00:05])",
        1,
    )
    scheduler.warning("Run time of job %s was missed by %s", "dispatch", "0:00:07")
    logging.getLogger("apscheduler.executors.default").info("Running job dispatch")
    messages = [line["message"] for line in lines.all() if line["logger"].startswith("apsch")]
    assert messages == ["Run time of job dispatch was missed by 0:00:07"]


def test_text_format_is_the_default(settings):
    assert settings.log_format == "text"
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure_logging(
            settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)}), stream
        )
        logging.getLogger("leadflow.test").info("token %s", ADMIN_TOKEN)
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    line = stream.getvalue().strip()
    assert line.endswith("INFO leadflow.test: token [redacted]"), line


async def test_request_id_on_an_unexpected_error(settings, clock, db):
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with app_client(app, raise_app_exceptions=False) as c:
        response = await c.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    assert response.json()["code"] == "internal_error"
