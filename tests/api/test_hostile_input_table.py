"""Issue 11's table, row by row: what was done to leadflow, and the test that keeps it from
happening again. Rows about bad input are asserted here over real HTTP, against ``leadflow
api`` running as its own process on PostgreSQL (a socket, uvicorn and keep-alive, not the
in-process transport); rows that need workers, signals or a receiver are asserted by the
heavier test named in the last column, which ``test_each_row_names_tests_that_exist`` checks.

| #  | what was done                                    | asserted by                          |
|----|--------------------------------------------------|--------------------------------------|
| 1  | ILN receiver answers 503 + Retry-After: 5 for    | tests/notifications/test_retry_after |
|    | 90 s (a deploy): notifications dead-lettered     | .py (both tests)                     |
| 2  | SIGTERM to a worker mid-batch                    | tests/dispatch/test_graceful_shutdown|
|    |                                                  | .py                                  |
| 3  | SIGKILL chaos (4 workers, kills every 1-2 s)     | tests/chaos/test_sigkill.py          |
| 4  | database restarted / stopped during ingest       | test_row_4_... here (real socket) and|
|    |                                                  | tests/platform/test_database_outage  |
| 5  | webhook-id longer than 255 characters            | test_row_5_... here                  |
| 6  | ILN URL with a DNS label over 63 characters or   | test_row_6_... here                  |
|    | an empty label                                   |                                      |
| 7  | NUL in query parameters and fields on PostgreSQL | test_row_7_... here (every route the |
|    |                                                  | issue lists)                         |
| 8  | sender_name with CR/LF                           | test_row_8_... here (refused at the  |
|    |                                                  | edge) and tests/dispatch/test_config-|
|    |                                                  | uration_failures.py (one stored      |
|    |                                                  | before: the follow-up fails once)    |
| 9  | custom template with a 10,000 x 10,000 loop, or  | tests/campaigns/test_bounded_        |
|    | a padding filter of 3e7                          | rendering.py (and test_template_     |
|    |                                                  | limits.py)                           |
| 10 | a leaked webhook secret or API key               | tests/api/test_credentials.py        |
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform.test_database_outage import Proxy
from tests.support.api import assert_problem
from tests.support.campaigns import campaign_body, custom_step, variant
from tests.support.events import event_body, signed_headers
from tests.support.served import Served, serve_api

TESTS = Path(__file__).resolve().parents[1]

# Rows asserted elsewhere: (row, test file, test functions in it).
ELSEWHERE = [
    (
        1,
        "notifications/test_retry_after.py",
        (
            "test_a_deploy_answering_503_retry_after_loses_nothing",
            "test_retry_after_cannot_keep_a_delivery_alive_past_the_horizon",
        ),
    ),
    (
        2,
        "dispatch/test_graceful_shutdown.py",
        ("test_sigterm_finishes_sends_in_flight_and_gives_back_the_rest",),
    ),
    (
        3,
        "chaos/test_sigkill.py",
        (
            "test_no_follow_up_is_received_twice",
            "test_unknown_stays_within_the_sends_cut_off_by_kills",
            "test_everything_settles_and_is_delivered_soon_after_the_last_kill",
        ),
    ),
    (4, "platform/test_database_outage.py", ("test_an_outage_answers_503_and_recovers",)),
    (
        8,
        "dispatch/test_configuration_failures.py",
        ("test_a_sender_that_cannot_be_a_header_fails_the_follow_up_once",),
    ),
    (
        9,
        "campaigns/test_bounded_rendering.py",
        (
            "test_hostile_template_is_refused_on_save_quickly",
            "test_slow_template_is_killed_and_the_api_keeps_answering",
            "test_issue_row_over_real_http",
        ),
    ),
    (
        10,
        "api/test_credentials.py",
        (
            "test_a_revoked_key_gets_401_at_once",
            "test_the_old_secret_works_during_the_overlap_and_fails_after",
        ),
    ),
]


@pytest.mark.parametrize(
    ("row", "path", "names"), ELSEWHERE, ids=[f"row-{r[0]}" for r in ELSEWHERE]
)
def test_each_row_names_tests_that_exist(row: int, path: str, names: tuple[str, ...]) -> None:
    source = (TESTS / path).read_text(encoding="utf-8")
    for name in names:
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), (row, path, name)


# --- one server for the rows about input --------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_api(tmp_path_factory.mktemp("hostile")) as running:
        yield running


@pytest.fixture(scope="module")
def account(served: Served) -> dict[str, Any]:
    return served.create_account("Hostile Input Shop")


@pytest.fixture
def api(served: Served, account: dict[str, Any]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {account['api_key']}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=30) as client:
        yield client


def _post_signed(
    api: httpx.Client, account: dict[str, Any], body: dict[str, Any], **signing: Any
) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = signed_headers(account["webhook_secret"], raw, **signing)
    return api.post(f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers)


def _items(api: httpx.Client, path: str) -> list[dict[str, Any]]:
    response = api.get(path)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- row 5: webhook-id ------------------------------------------------------------------------


def test_row_5_a_webhook_id_longer_than_storable_is_a_422(api, account):
    body = event_body(reference="chk_long_id")
    refused = _post_signed(api, account, body, msg_id="m" * 256)
    assert_problem(refused, 422, field="webhook-id")
    accepted = _post_signed(api, account, body, msg_id="m" * 255)
    assert accepted.status_code == 200, accepted.text
    again = _post_signed(api, account, body, msg_id="m" * 255)  # a platform's retry
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text


def test_a_webhook_timestamp_too_large_for_a_float_is_a_401(api, account):
    raw = json.dumps(event_body()).encode()
    headers = signed_headers(account["webhook_secret"], raw)
    headers["webhook-timestamp"] = "1" + "0" * 400
    response = api.post(f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers)
    assert_problem(response, 401)


# --- row 6: impossible host names in ILN URLs -------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["a" * 64 + ".example.com", "shop..example.com", ".example.com", "example.com.."],
    ids=["label-over-63", "empty-label", "leading-dot", "two-trailing-dots"],
)
def test_row_6_an_iln_url_with_an_impossible_host_is_a_422(api, host):
    before = _items(api, "/v1/iln/endpoints")
    response = api.post(
        "/v1/iln/endpoints", json={"url": f"https://{host}/hook", "event_types": []}
    )
    assert_problem(response, 422, field="url")
    assert _items(api, "/v1/iln/endpoints") == before


# --- row 7: NUL on PostgreSQL -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/iln/deliveries?event_type=a%00b", "event_type"),
        ("/v1/suppressions?email=a%00b@example.com", "email"),
        ("/v1/stats?campaign_id=cmp%00x", "campaign_id"),
        ("/v1/leads?email=x%00", "email"),
        ("/v1/settings?unknown=%00", "unknown"),  # one guard: any parameter, even unknown
        ("/healthz?probe=%00", "probe"),
    ],
)
def test_row_7_nul_in_a_query_parameter_is_a_422_naming_it(api, path, name):
    assert_problem(api.get(path), 422, field=name)


def _campaign(**fields: Any) -> dict[str, Any]:
    """A valid campaign with ``fields`` laid over it (``name`` too)."""
    return {**campaign_body("NUL probe"), **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_campaign(name="Cart\x00 recovery"), "name"),
        (_campaign(description="a\x00b"), "description"),
        (_campaign(products=["sku-1", "sku\x002"]), "products[1]"),
        (_campaign(variants=[variant("A\x00")]), "variants[0].name"),
        (_campaign(variants=[variant(steps=[custom_step(html="<p>\x00</p>")])]), None),
        (_campaign(variants=[variant(steps=[custom_step(discount_code="SAVE\x0010")])]), None),
    ],
    ids=["name", "description", "products", "variant-name", "step-html", "discount-code"],
)
def test_row_7_nul_in_a_campaign_field_is_a_422_naming_it(api, body, field):
    before = _items(api, "/v1/campaigns")
    problem = assert_problem(api.post("/v1/campaigns", json=body), 422)
    named = {e["field"] for e in problem["errors"]}
    if field is not None:
        assert field in named, problem
    else:  # a field of the step: named by its path down to the step
        assert any(n.startswith("variants[0].steps[0].") for n in named), problem
    assert _items(api, "/v1/campaigns") == before


def test_row_7_nul_in_a_new_variant_name_is_a_422(api):
    created = api.post("/v1/campaigns", json=_campaign(name="Variant NUL probe"))
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    response = api.post(f"/v1/campaigns/{campaign_id}/variants", json=variant("B\x00"))
    assert_problem(response, 422, field="name")
    variants = api.get(f"/v1/campaigns/{campaign_id}").json()["variants"]
    assert [v["name"] for v in variants] == ["A"]


def test_row_7_nul_in_a_path_is_a_404(api):
    response = api.get("/v1/leads/lead%00x")
    assert_problem(response, 404)


# --- row 8: line breaks in what becomes a header ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sender_name", "Acme\r\nBcc: victim@example.com"),
        ("sender_name", "Acme\nShop"),
        ("sender_name", "Acme\rShop"),
        ("sender_email", "shop@example.com\r\nBcc: victim@example.com"),
    ],
)
def test_row_8_line_breaks_in_a_sender_are_a_422(api, field, value):
    before = api.get("/v1/settings").json()
    response = api.put("/v1/settings", json={**before, field: value})
    assert_problem(response, 422, field=field)
    assert api.get("/v1/settings").json() == before


def test_row_8_line_breaks_in_a_subject_are_a_422(api):
    step = custom_step(subject="Hello\r\nBcc: victim@example.com")
    response = api.post("/v1/campaigns", json=_campaign(variants=[variant(steps=[step])]))
    problem = assert_problem(response, 422)
    assert any(e["field"].endswith("subject") for e in problem["errors"]), problem


# --- row 4: the database goes away under a keep-alive connection ------------------------------


class ThreadedProxy:
    """``tests/platform/test_database_outage.Proxy`` on an event loop of its own thread, so
    a synchronous test can cut and restore it while the server process uses it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = Proxy()
        self._run(self.proxy.start())

    def _run(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    @property
    def port(self) -> int:
        return self.proxy.port

    def cut(self) -> None:
        self._run(self.proxy.cut())

    def restore(self) -> None:
        self._run(self.proxy.restore())

    def close(self) -> None:
        try:
            self._run(self.proxy.cut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[ThreadedProxy, Served, dict[str, Any]]]:
    proxy = ThreadedProxy()
    try:
        with serve_api(tmp_path, database_port=proxy.port, db_pool_size="2") as running:
            yield proxy, running, running.create_account("Outage Shop")
    finally:
        proxy.close()


def _get(conn: http.client.HTTPConnection, path: str, key: str) -> tuple[int, dict, bytes]:
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_row_4_a_database_outage_is_a_503_on_a_connection_that_stays_usable(outage):
    proxy, served, account = outage
    host, port = served.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        status, _, _ = _get(conn, "/v1/settings", account["api_key"])
        assert status == 200
        assert conn.sock is not None
        local = conn.sock.getsockname()

        proxy.cut()
        for _ in range(3):  # the same connection every time: nothing closes it
            status, headers, raw = _get(conn, "/v1/settings", account["api_key"])
            assert status == 503, raw
            assert headers["content-type"].startswith("application/problem+json")
            assert json.loads(raw)["code"] == "database_unavailable"
            assert int(headers["retry-after"]) > 0
            assert headers.get("connection", "").lower() != "close"
            assert conn.sock is not None and conn.sock.getsockname() == local
        status, _, _ = _get(conn, "/readyz", account["api_key"])
        assert status == 503

        proxy.restore()
        deadline = time.monotonic() + 20
        while (status := _get(conn, "/v1/settings", account["api_key"])[0]) != 200:
            assert status == 503 and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert conn.sock is not None and conn.sock.getsockname() == local
    finally:
        conn.close()
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]  # one line per outage, not a traceback each
