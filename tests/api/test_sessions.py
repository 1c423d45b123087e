"""Dashboard sign-in: the session cookie (by API key, login link or first-run setup link),
its CSRF token, expiry and sign-out, and that none of it weakens the Bearer API."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from leadflow.accounts.sessions import create_login_link, create_setup_link
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.logs import Scrubber
from leadflow.models.accounts import Account, ApiKey
from leadflow.models.sessions import DashboardSession, LoginLink
from tests.support.api import ADMIN_TOKEN, BASE_URL, app_client, assert_problem, auth, ok_json
from tests.support.events import capture

COOKIE = "lf_session"


def set_cookie(response: httpx.Response) -> dict[str, Any]:
    """The ``lf_session`` Set-Cookie of ``response``: its value and attributes (lowercase)."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    assert len(headers) == 1, response.headers
    parsed = SimpleCookie()
    parsed.load(headers[0])
    morsel = parsed[COOKIE]
    flags = {part.strip().lower() for part in headers[0].split(";")[1:]}
    return {
        "value": morsel.value,
        "httponly": "httponly" in flags,
        "secure": "secure" in flags,
        "samesite": morsel["samesite"].lower(),
        "path": morsel["path"],
        "max_age": morsel["max-age"],
        "raw": headers[0],
    }


async def sign_in(client: httpx.AsyncClient, **body: str) -> tuple[str, dict[str, Any]]:
    """``POST /v1/session``: the cookie's token and the answer. The client's own cookie jar
    is emptied: each test says which cookie a request carries."""
    response = await client.post("/v1/session", json=body)
    assert response.status_code == 201, response.text
    token = set_cookie(response)["value"]
    client.cookies.clear()
    answer: dict[str, Any] = response.json()
    return token, answer


def cookie(token: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Cookie": f"{COOKIE}={token}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


async def login_token(db: Database, account_id: str, now: dt.datetime) -> str:
    async with db.session() as session:
        return await create_login_link(session, account_id, now)


async def setup_token(db: Database, now: dt.datetime) -> str | None:
    async with db.session() as session:
        return await create_setup_link(session, now)


# --- signing in ------------------------------------------------------------------------------


async def test_an_api_key_opens_a_session_held_in_an_httponly_strict_cookie(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    response = await client.post(
        "/v1/session", json={"api_key": account["api_key"]}, headers={"User-Agent": "x" * 500}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"account_id", "account_name", "csrf_token", "expires_at"}
    assert body["account_id"] == account["id"]
    assert body["account_name"] == "Acme Shop"
    assert len(body["csrf_token"]) >= 32
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now() + dt.timedelta(hours=12)
    attrs = set_cookie(response)
    assert attrs["httponly"] and attrs["samesite"] == "strict" and attrs["path"] == "/"
    assert not attrs["secure"]  # plain http, and an http base URL
    assert attrs["max_age"] == str(12 * 3600)
    token = attrs["value"]
    assert token.startswith("lfs_") and token != account["api_key"]
    assert account["api_key"] not in attrs["raw"]

    # Only the token's hash is stored; the user agent is cut short.
    async with db.reader() as session:
        row = (await session.scalars(select(DashboardSession))).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.id, row.token_hash, row.csrf_token, row.user_agent}
    assert row.user_agent == "x" * 200

    client.cookies.clear()
    again = ok_json(await client.get("/v1/session", headers=cookie(token)))
    assert again == body
    settings = ok_json(await client.get("/v1/settings", headers=cookie(token)))
    assert settings["timezone"] == "UTC"


async def test_bad_credentials_are_refused(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    for body in (
        {"api_key": account["api_key"] + "x"},
        {"api_key": "lf_unknown_key_0123456789"},
        {"login_token": "lfl_not_a_link_0123456789"},
        {"login_token": account["api_key"]},  # a key is no login token
    ):
        response = await client.post("/v1/session", json=body)
        assert_problem(response, 401, "invalid_credentials")
        assert "set-cookie" not in response.headers
    for body in ({}, {"api_key": account["api_key"], "login_token": "lfl_x"}, {"api_key": ""}):
        assert_problem(await client.post("/v1/session", json=body), 422, "validation_error")
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(DashboardSession)) == 0


async def test_a_revoked_key_opens_no_session(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await client.post("/v1/api-keys", json={"name": "spare"}, headers=auth(account))
    assert response.status_code == 201, response.text
    second = response.json()
    revoked = await client.delete(f"/v1/api-keys/{second['id']}", headers=auth(account))
    assert revoked.status_code == 204, revoked.text
    assert_problem(
        await client.post("/v1/session", json={"api_key": second["key"]}),
        401,
        "invalid_credentials",
    )


@pytest.mark.parametrize(
    ("base_url", "headers", "secure"),
    [
        ("http://testserver", {}, False),
        ("http://testserver", {"X-Forwarded-Proto": "https"}, True),
        ("https://testserver", {}, True),  # the request itself is https
    ],
)
async def test_the_cookie_is_secure_when_the_request_is_https(
    settings: Settings,
    clock: ManualClock,
    db: Database,
    account: dict[str, Any],
    base_url: str,
    headers: dict[str, str],
    secure: bool,
) -> None:
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        response = await client.post(
            "/v1/session", json={"api_key": account["api_key"]}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert set_cookie(response)["secure"] is secure
        token = set_cookie(response)["value"]
        client.cookies.clear()
        out = await client.delete(
            "/v1/session",
            headers={**headers, **cookie(token, response.json()["csrf_token"])},
        )
        assert out.status_code == 204, out.text
        assert set_cookie(out)["secure"] is secure


async def test_the_cookie_is_secure_when_the_base_url_is_https(
    db: Database, clock: ManualClock, account: dict[str, Any]
) -> None:
    settings = Settings(
        database_url=db.url, admin_token=ADMIN_TOKEN, base_url="https://leads.example.com"
    )
    async with app_client(create_app(settings, clock=clock, db=db, auto_migrate=False)) as c:
        response = await c.post("/v1/session", json={"api_key": account["api_key"]})
    assert response.status_code == 201, response.text
    assert set_cookie(response)["secure"] is True


# --- CSRF, and the Bearer API unchanged ---------------------------------------------------------


async def test_a_state_change_by_cookie_needs_the_csrf_token(
    client: httpx.AsyncClient, account: dict[str, Any], db: Database
) -> None:
    token, signed_in = await sign_in(client, api_key=account["api_key"])
    csrf = signed_in["csrf_token"]
    for headers in (cookie(token), cookie(token, "wrong"), cookie(token, csrf[:-1])):
        refused = await client.put(
            "/v1/settings", json={"timezone": "Europe/Berlin"}, headers=headers
        )
        assert_problem(refused, 403, "csrf_failed", detailed=True)
        refused = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)
        assert_problem(refused, 403, "csrf_failed")
    # Nothing was written.
    assert ok_json(await client.get("/v1/settings", headers=cookie(token)))["timezone"] == "UTC"
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 1

    changed = await client.put(
        "/v1/settings", json={"timezone": "Europe/Berlin"}, headers=cookie(token, csrf)
    )
    assert ok_json(changed)["timezone"] == "Europe/Berlin"
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=cookie(token, csrf))
    assert created.status_code == 201, created.text


async def test_bearer_requests_are_judged_by_the_key_alone(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    other_account: dict[str, Any],
    clock: ManualClock,
) -> None:
    token, signed_in = await sign_in(client, api_key=account["api_key"])
    # A Bearer request needs no CSRF token, whatever cookie comes along (a stale one here).
    stale = cookie("lfs_stale_or_forged_0123456789")
    both = {**auth(account), **stale}
    assert ok_json(await client.get("/v1/settings", headers=both))["timezone"] == "UTC"
    changed = await client.put("/v1/settings", json={"timezone": "Asia/Tokyo"}, headers=both)
    assert ok_json(changed)["timezone"] == "Asia/Tokyo"
    # An expired session cookie beside a good key: the key decides.
    clock.advance(hours=13)
    assert ok_json(await client.get("/v1/settings", headers={**auth(account), **cookie(token)}))
    # A bad key is refused even with a valid cookie of the same account...
    clock.advance(hours=-13)
    bad = {
        "Authorization": "Bearer lf_not_a_key_0123456789",
        **cookie(token, signed_in["csrf_token"]),
    }
    assert_problem(await client.get("/v1/settings", headers=bad), 401, "unauthorized")
    basic = {"Authorization": "Basic dXNlcjpwYXNz", **cookie(token)}
    assert_problem(await client.get("/v1/settings", headers=basic), 401, "unauthorized")
    # ...and another account's key speaks for that account, not the cookie's.
    mixed = {**auth(other_account), **cookie(token)}
    assert ok_json(await client.get("/v1/settings", headers=mixed))["timezone"] == "UTC"


async def test_an_unknown_cookie_is_refused(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    for path in ("/v1/session", "/v1/settings", "/v1/leads"):
        response = await client.get(path, headers=cookie("lfs_forged_0123456789"))
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(await client.get("/v1/session"), 401, "unauthorized")
    # An API key is no session: GET /v1/session answers for a cookie only.
    assert_problem(await client.get("/v1/session", headers=auth(account)), 401, "unauthorized")


# --- expiry and sign-out ------------------------------------------------------------------------


async def test_a_session_expires_after_the_configured_hours(
    db: Database, clock: ManualClock, account: dict[str, Any]
) -> None:
    settings = Settings(
        database_url=db.url, admin_token=ADMIN_TOKEN, base_url=BASE_URL, session_hours=2
    )
    async with app_client(create_app(settings, clock=clock, db=db, auto_migrate=False)) as c:
        token, signed_in = await sign_in(c, api_key=account["api_key"])
        expires = dt.datetime.fromisoformat(signed_in["expires_at"].replace("Z", "+00:00"))
        assert expires == clock.now() + dt.timedelta(hours=2)
        clock.advance(hours=1, minutes=59)
        assert ok_json(await c.get("/v1/settings", headers=cookie(token)))
        clock.advance(minutes=1)
        for path in ("/v1/session", "/v1/settings"):
            response = await c.get(path, headers=cookie(token))
            assert_problem(response, 401, "session_expired", detailed=True)
        expired = await c.put(
            "/v1/settings",
            json={"timezone": "Europe/Paris"},
            headers=cookie(token, signed_in["csrf_token"]),
        )
        assert_problem(expired, 401, "session_expired")


async def test_sessions_last_twelve_hours_by_default(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock
) -> None:
    token, _ = await sign_in(client, api_key=account["api_key"])
    clock.advance(hours=11, minutes=59)
    assert ok_json(await client.get("/v1/session", headers=cookie(token)))
    clock.advance(minutes=1)
    assert_problem(await client.get("/v1/session", headers=cookie(token)), 401, "session_expired")


async def test_sign_out_needs_csrf_revokes_the_session_and_clears_the_cookie(
    client: httpx.AsyncClient, account: dict[str, Any], db: Database
) -> None:
    token, signed_in = await sign_in(client, api_key=account["api_key"])
    other_token, _ = await sign_in(client, api_key=account["api_key"])
    assert_problem(await client.delete("/v1/session", headers=cookie(token)), 403, "csrf_failed")
    assert ok_json(await client.get("/v1/session", headers=cookie(token)))

    out = await client.delete("/v1/session", headers=cookie(token, signed_in["csrf_token"]))
    assert out.status_code == 204, out.text
    cleared = set_cookie(out)
    assert cleared["value"] == "" and cleared["max_age"] == "0"
    assert cleared["httponly"] and cleared["path"] == "/"
    client.cookies.clear()

    # The old cookie, kept by someone, no longer works anywhere.
    for path in ("/v1/session", "/v1/settings"):
        gone = await client.get(path, headers=cookie(token))
        assert_problem(gone, 401, "unauthorized")
        assert "signed out" in gone.json()["detail"]
    again = await client.delete("/v1/session", headers=cookie(token, signed_in["csrf_token"]))
    assert_problem(again, 401, "unauthorized")
    # Another session of the same account is not affected.
    assert ok_json(await client.get("/v1/session", headers=cookie(other_token)))
    async with db.reader() as session:
        rows = (await session.scalars(select(DashboardSession))).all()
    assert sorted(r.revoked_at is not None for r in rows) == [False, True]


async def test_last_use_is_recorded_to_the_minute(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    token, _ = await sign_in(client, api_key=account["api_key"])
    start = clock.now()

    async def last_seen() -> dt.datetime:
        async with db.reader() as session:
            value = await session.scalar(select(DashboardSession.last_seen_at))
        assert value is not None
        return value

    clock.advance(seconds=30)
    ok_json(await client.get("/v1/settings", headers=cookie(token)))
    assert await last_seen() == start
    clock.advance(seconds=31)
    ok_json(await client.get("/v1/settings", headers=cookie(token)))
    assert await last_seen() == clock.now()


# --- login links ------------------------------------------------------------------------------


async def test_a_login_link_signs_in_once(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    link = await login_token(db, account["id"], clock.now())
    assert link.startswith("lfl_")
    token, signed_in = await sign_in(client, login_token=link)
    assert signed_in["account_id"] == account["id"]
    assert ok_json(await client.get("/v1/settings", headers=cookie(token)))
    again = await client.post("/v1/session", json={"login_token": link})
    assert_problem(again, 401, "invalid_credentials")
    async with db.reader() as session:
        stored = (await session.scalars(select(LoginLink))).one()
    assert stored.used_at == clock.now()
    assert stored.token_hash == hashlib.sha256(link.encode()).hexdigest()


async def test_a_login_link_expires_after_fifteen_minutes(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    late = await login_token(db, account["id"], clock.now())
    in_time = await login_token(db, account["id"], clock.now())
    clock.advance(minutes=14, seconds=59)
    await sign_in(client, login_token=in_time)
    clock.advance(seconds=1)
    assert_problem(
        await client.post("/v1/session", json={"login_token": late}), 401, "invalid_credentials"
    )


async def test_a_login_link_of_a_deleted_account_signs_nobody_in(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    """Links and sessions go with their account (ON DELETE CASCADE)."""
    link = await login_token(db, account["id"], clock.now())
    token, _ = await sign_in(client, api_key=account["api_key"])
    async with db.session() as session:
        await session.delete(await session.get_one(Account, account["id"]))
    assert_problem(
        await client.post("/v1/session", json={"login_token": link}), 401, "invalid_credentials"
    )
    assert_problem(await client.get("/v1/session", headers=cookie(token)), 401, "unauthorized")


# --- the first run ----------------------------------------------------------------------------


@pytest.fixture
async def empty_client(
    settings: Settings, clock: ManualClock, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database without any account."""
    async with app_client(create_app(settings, clock=clock, db=db, auto_migrate=False)) as c:
        yield c


async def test_the_setup_link_creates_the_first_account_and_signs_in(
    empty_client: httpx.AsyncClient, clock: ManualClock, db: Database
) -> None:
    client = empty_client
    link = await setup_token(db, clock.now())
    assert link is not None and link.startswith("lfl_")
    # A setup token is no login token.
    assert_problem(
        await client.post("/v1/session", json={"login_token": link}), 401, "invalid_credentials"
    )
    wrong = await client.post("/v1/setup", json={"token": link + "x", "account_name": "Shop"})
    assert_problem(wrong, 401, "invalid_credentials")
    blank = await client.post("/v1/setup", json={"token": link, "account_name": "  "})
    assert_problem(blank, 422, "validation_error", field="account_name")

    response = await client.post("/v1/setup", json={"token": link, "account_name": " My Shop "})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "account_id",
        "account_name",
        "csrf_token",
        "expires_at",
        "api_key",
        "webhook_secret",
    }
    assert body["account_name"] == "My Shop"
    assert body["api_key"].startswith("lf_") and body["webhook_secret"].startswith("whsec_")
    attrs = set_cookie(response)
    assert attrs["httponly"] and attrs["samesite"] == "strict" and attrs["path"] == "/"
    client.cookies.clear()
    session_of = ok_json(await client.get("/v1/session", headers=cookie(attrs["value"])))
    assert session_of["account_id"] == body["account_id"]
    # The key works on the Bearer API; the account has its built-in lead groups.
    keyed = {"api_key": body["api_key"]}
    groups = ok_json(await client.get("/v1/lead-groups", headers=auth(keyed)))
    assert len(groups["items"]) >= 4

    # Single use, and only while no account exists.
    again = await client.post("/v1/setup", json={"token": link, "account_name": "Second"})
    assert_problem(again, 409, "setup_done")
    assert await setup_token(db, clock.now()) is None
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == 1
        left = await session.scalar(
            select(func.count()).select_from(LoginLink).where(LoginLink.purpose == "setup")
        )
    assert left == 0


async def test_each_start_replaces_the_setup_link(
    empty_client: httpx.AsyncClient, clock: ManualClock, db: Database
) -> None:
    first = await setup_token(db, clock.now())
    second = await setup_token(db, clock.now())
    assert first and second and first != second
    refused = await empty_client.post("/v1/setup", json={"token": first, "account_name": "Shop"})
    assert_problem(refused, 401, "invalid_credentials")
    ok = await empty_client.post("/v1/setup", json={"token": second, "account_name": "Shop"})
    assert ok.status_code == 201, ok.text


async def test_a_setup_link_expires_after_a_day(
    empty_client: httpx.AsyncClient, clock: ManualClock, db: Database
) -> None:
    link = await setup_token(db, clock.now())
    clock.advance(hours=24)
    refused = await empty_client.post("/v1/setup", json={"token": link, "account_name": "Shop"})
    assert_problem(refused, 401, "invalid_credentials")


async def test_no_setup_once_an_account_exists(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    assert await setup_token(db, clock.now()) is None
    refused = await client.post(
        "/v1/setup", json={"token": "lfl_whatever_0123", "account_name": "X"}
    )
    assert_problem(refused, 409, "setup_done")


# --- tenants ----------------------------------------------------------------------------------


async def test_a_session_sees_its_own_account_only(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    other_account: dict[str, Any],
    clock: ManualClock,
) -> None:
    mine = await capture(client, account, clock, reference="chk_a", email="a@example.com")
    theirs = await capture(client, other_account, clock, reference="chk_b", email="b@example.com")
    token, signed_in = await sign_in(client, api_key=account["api_key"])
    csrf = signed_in["csrf_token"]
    leads = ok_json(await client.get("/v1/leads", headers=cookie(token)))
    assert [lead["id"] for lead in leads["items"]] == [mine]
    assert ok_json(await client.get(f"/v1/leads/{mine}", headers=cookie(token)))["id"] == mine
    assert_problem(await client.get(f"/v1/leads/{theirs}", headers=cookie(token)), 404)
    # A change through the session lands on its account only.
    changed = await client.put(
        "/v1/settings", json={"timezone": "Europe/Rome"}, headers=cookie(token, csrf)
    )
    assert ok_json(changed)["timezone"] == "Europe/Rome"
    assert (
        ok_json(await client.get("/v1/settings", headers=auth(other_account)))["timezone"] == "UTC"
    )
    # The other account's session is its own; this session's CSRF token is no good with it.
    other_token, other_session = await sign_in(client, api_key=other_account["api_key"])
    assert other_session["account_id"] == other_account["id"]
    assert other_session["csrf_token"] != csrf
    crossed = await client.put(
        "/v1/settings", json={"timezone": "Europe/Oslo"}, headers=cookie(other_token, csrf)
    )
    assert_problem(crossed, 403, "csrf_failed")


# --- the document and the logs ------------------------------------------------------------------


async def test_the_openapi_document_describes_both_ways_in(client: httpx.AsyncClient) -> None:
    spec = ok_json(await client.get("/openapi.json"))
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["HTTPBearer"]["description"],
    }
    assert schemes["SessionCookie"]["type"] == "apiKey"
    assert schemes["SessionCookie"]["in"] == "cookie"
    assert schemes["SessionCookie"]["name"] == COOKIE
    put = spec["paths"]["/v1/settings"]["put"]
    assert put["security"] == [{"HTTPBearer": []}, {"SessionCookie": []}]
    assert "403" in put["responses"]
    get = spec["paths"]["/v1/settings"]["get"]
    assert "403" not in get["responses"]
    session = spec["paths"]["/v1/session"]
    assert session["post"]["operationId"] == "createSession"
    assert "security" not in session["post"]
    assert session["get"]["security"] == [{"SessionCookie": []}]
    assert "403" in session["delete"]["responses"]
    assert spec["paths"]["/v1/setup"]["post"]["operationId"] == "completeSetup"
    # Webhooks are signed, not signed in.
    assert "security" not in spec["paths"]["/v1/webhooks/{account_id}/events"]["post"]


def test_session_and_link_tokens_are_scrubbed_from_log_lines() -> None:
    scrub = Scrubber()
    line = "cookie lf_session=lfs_AbCdEf0123456789_-xyz link #/login?token=lfl_ZyXw9876543210abc"
    cleaned = scrub(line)
    assert "lfs_AbCdEf" not in cleaned and "lfl_ZyXw" not in cleaned
    assert cleaned.count("[redacted]") == 2
