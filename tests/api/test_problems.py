"""Every failure is an RFC 9457 problem document, and bad input is never a 500."""

from __future__ import annotations

import base64
import json

import pytest

from leadflow.app import create_app
from tests.support.api import ADMIN_TOKEN, PROBLEM, app_client, assert_problem, auth


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/lead", "/v2/leads", "/v1/leads/a/b"])
async def test_unknown_route_is_a_404_problem(client, account, path):
    response = await client.get(path, headers=auth(account))
    problem = assert_problem(response, 404, code="not_found", typed=True, titled=True)
    assert problem["title"] == "Not Found"
    assert problem["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/settings", {"GET", "PUT"}),
        ("PATCH", "/v1/settings", {"GET", "PUT"}),
        ("POST", "/v1/leads", {"GET"}),
        ("DELETE", "/v1/leads/lead_1", {"GET"}),
        ("GET", "/v1/admin/accounts", {"POST"}),
        ("PUT", "/v1/lead-groups/trial", {"PATCH"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
async def test_wrong_method_is_a_405_problem_with_allow(client, account, method, path, allowed):
    response = await client.request(method, path, headers=auth(account), json={})
    problem = assert_problem(response, 405, code="method_not_allowed", typed=True, titled=True)
    assert problem["title"] == "Method Not Allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_problem_documents_have_the_rfc9457_members(client, account):
    response = await client.get("/v1/leads", params={"status": "nope"}, headers=auth(account))
    problem = assert_problem(response, 422, field="status", typed=True, titled=True)
    assert set(problem) == {"type", "title", "status", "detail", "code", "errors"}
    assert problem["title"] == "Unprocessable Entity"
    assert problem["type"] == "/problems/validation-error"
    assert all(set(e) == {"field", "message"} for e in problem["errors"])


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


HOSTILE = [
    ("GET", "/v1/leads/%00", {}, None),
    ("GET", "/v1/leads/" + "a" * 5000, {}, None),
    ("GET", "/v1/leads/%F0%9F%92%A5", {}, None),
    ("GET", "/v1/leads/..%2F..%2Fsettings", {}, None),
    ("GET", "/v1/leads", {"email": "\x00"}, None),
    ("GET", "/v1/leads", {"email": "a" * 5000}, None),
    ("GET", "/v1/leads", {"email": "' OR 1=1 --"}, None),
    ("GET", "/v1/leads", {"email": "💥@example.com"}, None),
    ("GET", "/v1/leads", {"country": "\x00\x00"}, None),
    ("GET", "/v1/leads", {"language": "\x00"}, None),
    ("GET", "/v1/leads", {"cursor": "\x00"}, None),
    ("GET", "/v1/leads", {"cursor": "a" * 10000}, None),
    ("GET", "/v1/leads", {"cursor": _cursor([None, None])}, None),
    ("GET", "/v1/leads", {"cursor": _cursor([True, {"a": 1}])}, None),
    ("GET", "/v1/leads", {"cursor": _cursor(["2026-01-01T00:00:00+00:00", None])}, None),
    ("GET", "/v1/leads", {"cursor": _cursor(["9999-12-31T23:59:59-12:00", "x"])}, None),
    ("GET", "/v1/leads", {"cursor": _cursor(["2026-01-01T00:00:00+00:00", "x" * 5000])}, None),
    ("GET", "/v1/leads", {"captured_from": "-1"}, None),
    ("GET", "/v1/leads", {"captured_from": "1e400"}, None),
    ("GET", "/v1/leads", {"captured_to": "9999-12-31T23:59:59-14:00"}, None),
    ("GET", "/v1/leads", {"captured_from": "0001-01-01T00:00:00+14:00"}, None),
    ("GET", "/v1/leads", {"limit": "1e3"}, None),
    ("GET", "/v1/leads", {"limit": "NaN"}, None),
    ("PATCH", "/v1/lead-groups/%00", {}, {"status": "active"}),
    ("PATCH", "/v1/lead-groups/" + "k" * 5000, {}, {"status": "active"}),
    ("PATCH", "/v1/lead-groups/trial", {}, {"status": "\x00"}),
    ("PATCH", "/v1/lead-groups/trial", {}, ["status"]),
    ("PUT", "/v1/settings", {}, {"sender_name": "\x00"}),
    ("PUT", "/v1/settings", {}, {"sender_email": "a\x00@example.com"}),
    ("PUT", "/v1/settings", {}, {"timezone": "\x00"}),
    ("PUT", "/v1/settings", {}, {"timezone": "../../etc/passwd"}),
    ("PUT", "/v1/settings", {}, {"default_currency": "\x00\x00\x00"}),
    ("PUT", "/v1/settings", {}, {"min_delays": {"trial": "P" + "9" * 400 + "D"}}),
    ("PUT", "/v1/settings", {}, {"min_delays": {"trial": "PT" + "9" * 30 + "S"}}),
    ("PUT", "/v1/settings", {}, {"min_delays": {"trial": "P99999999999W"}}),
    ("PUT", "/v1/settings", {}, {"min_delays": {"trial": "\x00"}}),
    ("PUT", "/v1/settings", {}, {"min_delays": [1, 2]}),
    ("PUT", "/v1/settings", {}, {"lead_management_enabled": 10**400}),
    ("PUT", "/v1/settings", {}, {"sender_name": {"nested": [1, 2, 3]}}),
    ("PUT", "/v1/settings", {}, 12),
    ("PUT", "/v1/settings", {}, "x" * 100_000),
]


async def test_bad_input_is_never_a_500(settings, clock, db, account):
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    failures = []
    async with app_client(app, raise_app_exceptions=False) as client:
        for method, path, params, body in HOSTILE:
            case = f"{method} {path[:60]} {params!r:.80} {body!r:.80}"
            response = await client.request(
                method, path, params=params, json=body, headers=auth(account)
            )
            if response.status_code >= 500:
                failures.append(f"{case}: {response.status_code} {response.text}")
            elif response.status_code >= 400:
                if not response.headers["content-type"].startswith(PROBLEM):
                    failures.append(f"{case}: not a problem document")
            elif response.headers["content-type"] != "application/json":
                failures.append(f"{case}: {response.headers['content-type']}")
            # The service still works afterwards (no poisoned connection or transaction).
            after = await client.get("/v1/settings", headers=auth(account))
            if after.status_code != 200:
                failures.append(f"after {case}: {after.status_code} {after.text}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "body",
    [{"name": "\x00"}, {"name": "n" * 100_000}, {"name": ["x"]}, [], "Shop", None],
)
async def test_bad_account_creation_input_is_never_a_500(settings, clock, db, body):
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app, raise_app_exceptions=False) as client:
        response = await client.post(
            "/v1/admin/accounts", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert_problem(response, 422, typed=True, titled=True)


async def test_non_json_content_type_is_a_problem_not_a_500(settings, clock, db, account):
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app, raise_app_exceptions=False) as client:
        for content_type, content in [
            ("text/plain", b'{"timezone": "UTC"}'),
            ("application/xml", b"<settings/>"),
            ("application/json", b"\xff\xfe\x00"),
            ("application/json", b'{"timezone": "UTC"' + b"\x00}"),
        ]:
            response = await client.put(
                "/v1/settings",
                content=content,
                headers={**auth(account), "content-type": content_type},
            )
            assert 400 <= response.status_code < 500, (content_type, content, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
