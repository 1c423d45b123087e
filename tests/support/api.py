"""Talking to the API: accounts and their credentials, JSON answers, problem documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
# LEADFLOW_SECRET_KEY of the tests (tests/conftest.py): the envelope key of secrets at rest.
TEST_SECRET_KEY = "zMGTIgH4dRcw4TNk9Xc6OvtGj9TAKcOCJ_n2UvE0kuo="
BASE_URL = "http://testserver"
PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "errors"}  # every member
SMALL_BODY_LIMIT = 2048  # the ``small_client`` app's limits
SMALL_BATCH_LIMIT = 3


@asynccontextmanager
async def app_client(
    app: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def make_account(client: httpx.AsyncClient, name: str = "Acme Shop") -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/accounts",
        json={"name": name},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def auth(account: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['api_key']}"}


def ok_json(response: httpx.Response) -> Any:
    """The JSON of a 200 answer."""
    assert response.status_code == 200, response.text
    return response.json()


async def get_json(
    client: httpx.AsyncClient, account: dict[str, Any], path: str, **params: Any
) -> dict[str, Any]:
    result: dict[str, Any] = ok_json(await client.get(path, params=params, headers=auth(account)))
    return result


async def get_lead(client: httpx.AsyncClient, account: dict[str, Any], lead_id: str) -> Any:
    return ok_json(await client.get(f"/v1/leads/{lead_id}", headers=auth(account)))


async def put_settings(
    client: httpx.AsyncClient, account: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    result: dict[str, Any] = ok_json(
        await client.put("/v1/settings", json=changes, headers=auth(account))
    )
    return result


def assert_problem(
    response: httpx.Response,
    status: int,
    code: str | None = None,
    *,
    field: str | None = None,
    message_contains: str | None = None,
    typed: bool = False,
    titled: bool = False,
    detailed: bool = False,
    complete: bool = False,
    with_errors: bool = False,
) -> dict[str, Any]:
    """An RFC 9457 problem document (``application/problem+json``) with ``status``, and:

    - ``code``: that ``code``;
    - ``field``: ``errors`` names it; ``message_contains``: that error's message contains it;
    - ``typed``: ``type`` is a ``/problems/...`` reference;
    - ``titled``: ``title`` and ``code`` are not empty;
    - ``detailed``: ``detail`` is not empty;
    - ``complete`` (with ``code``): ``type`` is the one ``code`` names, and ``title`` and
      ``detail`` are not empty;
    - ``with_errors``: every member is there, and ``errors`` is not empty.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if typed:
        assert body["type"].startswith("/problems/")
    if titled:
        assert body["title"]
        assert body["code"]
    if code is not None:
        assert body["code"] == code, body
    if complete:
        assert code is not None, "complete checks the type against the code"
        assert body["type"] == f"/problems/{code.replace('_', '-')}"
        assert body["title"]
        assert body["detail"]
    if detailed:
        assert body["detail"]
    if with_errors:
        assert set(body) == PROBLEM_KEYS
        assert body["errors"], body
    if field is not None:
        errors = body.get("errors") or []
        messages = [e["message"] for e in errors if e["field"] == field]
        assert messages, f"{field!r} not named in {[e['field'] for e in errors]!r}: {body}"
        if message_contains is not None:
            assert any(message_contains in m for m in messages), (field, messages)
    return body


def error_fields(problem: dict[str, Any]) -> set[str]:
    """The fields a problem's ``errors`` name (none when it has no ``errors``)."""
    return {e["field"] for e in problem.get("errors") or []}
