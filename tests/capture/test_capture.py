"""Opt-in capture forms end to end over HTTP: JSON and plain HTML form posts, consent and its
proof, the honeypot, CORS, the same answer for a known address, the publishable key."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.capture.helpers import (
    SHOP,
    capture_settings,
    consents,
    leads,
    public_key,
    put_capture_settings,
    signup,
)
from tests.support.api import PROBLEM, auth, ok_json

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_a_json_sign_up_becomes_an_opt_in_lead_with_its_consent_proof(
    client, account, clock, db
):
    await put_capture_settings(client, account, consent_text="Send me news", consent_version="v2")
    key = await public_key(client, account)
    assert key.startswith("pk_")
    response = await client.post(
        f"/v1/capture/{key}",
        json=signup(page_url=f"{SHOP}/signup", language="de"),
        headers={"User-Agent": "Browser/1.0"},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "received"}
    (lead,) = await leads(client, account)
    assert lead["source_type"] == "opt_in" and lead["status"] == "open"
    assert lead["customer"]["email"] == "jane@example.com"
    assert lead["customer"]["first_name"] == "Jane"
    (consent,) = await consents(db)
    assert consent.status == "confirmed" and consent.lead_id == lead["id"]
    assert consent.created_at == clock.now() and consent.confirmed_at == clock.now()
    assert consent.ip == "127.0.0.1" and consent.user_agent == "Browser/1.0"
    assert consent.page_url == f"{SHOP}/signup"
    assert (consent.consent_text, consent.consent_version) == ("Send me news", "v2")
    assert consent.language == "de"


async def test_a_plain_html_form_post_is_redirected_to_the_thank_you_page(client, account, db):
    await put_capture_settings(client, account, thank_you_url=f"{SHOP}/thanks")
    key = await public_key(client, account)
    body = urlencode({"email": "form@example.com", "consent": "on", "website": ""})
    response = await client.post(
        f"/v1/capture/{key}", content=body, headers={**FORM, "Referer": f"{SHOP}/page"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{SHOP}/thanks"
    (lead,) = await leads(client, account)
    assert lead["customer"]["email"] == "form@example.com"
    (consent,) = await consents(db)
    assert consent.page_url == f"{SHOP}/page"


async def test_a_form_post_asking_for_json_gets_json(client, account):
    await put_capture_settings(client, account, thank_you_url=f"{SHOP}/thanks")
    key = await public_key(client, account)
    body = urlencode({"email": "js@example.com", "consent": "true"})
    response = await client.post(
        f"/v1/capture/{key}", content=body, headers={**FORM, "Accept": "application/json"}
    )
    assert response.status_code == 202 and response.json() == {"status": "received"}


async def test_consent_is_required_and_nothing_is_stored_without_it(client, account, db):
    key = await public_key(client, account)
    for body in ({"email": "a@example.com"}, {"email": "a@example.com", "consent": False}):
        response = await client.post(f"/v1/capture/{key}", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == ["consent"]
    form = urlencode({"email": "a@example.com", "consent": ""})
    response = await client.post(f"/v1/capture/{key}", content=form, headers=FORM)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["consent"]
    response = await client.post(f"/v1/capture/{key}", json={"consent": True, "email": "nope"})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["email"]
    assert await leads(client, account) == [] and await consents(db) == []


async def test_a_filled_honeypot_is_answered_as_a_success_and_stores_nothing(client, account, db):
    await put_capture_settings(client, account, thank_you_url=f"{SHOP}/thanks")
    key = await public_key(client, account)
    response = await client.post(
        f"/v1/capture/{key}", json=signup("bot@example.com", website="http://spam.example")
    )
    assert response.status_code == 202 and response.json() == {"status": "received"}
    body = urlencode({"email": "bot@example.com", "consent": "on", "website": "x"})
    response = await client.post(f"/v1/capture/{key}", content=body, headers=FORM)
    assert response.status_code == 303 and response.headers["location"] == f"{SHOP}/thanks"
    assert await leads(client, account) == [] and await consents(db) == []


async def test_a_known_address_gets_the_same_answer(client, account, db):
    key = await public_key(client, account)
    first = await client.post(f"/v1/capture/{key}", json=signup("Same@Example.com"))
    second = await client.post(f"/v1/capture/{key}", json=signup("same@example.com"))
    assert (first.status_code, first.content) == (second.status_code, second.content)
    assert set(first.headers) - {"x-request-id"} == set(second.headers) - {"x-request-id"}
    assert len(await leads(client, account)) == 1
    assert len(await consents(db)) == 2  # each consent is its own proof


async def test_cors_preflight_answers_only_allowed_origins(client, account):
    await put_capture_settings(client, account, allowed_origins=[f"{SHOP}/"])
    assert (await capture_settings(client, account))["allowed_origins"] == [SHOP]
    key = await public_key(client, account)
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await client.options(f"/v1/capture/{key}", headers={**preflight, "Origin": SHOP})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    foreign = await client.options(
        f"/v1/capture/{key}", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 204
    assert not [h for h in foreign.headers if h.startswith("access-control-")]
    posted = await client.post(f"/v1/capture/{key}", json=signup(), headers={"Origin": SHOP})
    assert posted.headers["access-control-allow-origin"] == SHOP
    other = await client.post(
        f"/v1/capture/{key}", json=signup(), headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_settings_are_validated(client, account):
    bad = await client.put(
        "/v1/capture/settings",
        json={"allowed_origins": ["https://shop.example.com/path"], "thank_you_url": "nope"},
        headers=auth(account),
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"allowed_origins[0]", "thank_you_url"}, bad.json()


async def test_a_rotated_publishable_key_refuses_the_old_one(client, account):
    old = await public_key(client, account)
    rotated = ok_json(await client.post("/v1/capture/settings/rotate-key", headers=auth(account)))
    new = rotated["publishable_key"]
    assert new.startswith("pk_") and new != old
    gone = await client.post(f"/v1/capture/{old}", json=signup())
    assert gone.status_code == 404
    assert (await client.get(f"/v1/capture/{old}/form.js")).status_code == 404
    assert (await client.post(f"/v1/capture/{new}", json=signup())).status_code == 202
    assert len(await leads(client, account)) == 1


async def test_one_accounts_key_captures_only_into_that_account(client, account, other_account):
    key = await public_key(client, account)
    other_key = await public_key(client, other_account)
    assert key != other_key
    await client.post(f"/v1/capture/{key}", json=signup("mine@example.com"))
    assert await leads(client, other_account) == []
    (lead,) = await leads(client, account)
    assert lead["customer"]["email"] == "mine@example.com"
    # Settings are the caller's own: another account's key never shows or changes them.
    await put_capture_settings(client, other_account, perk="OTHER10")
    assert (await capture_settings(client, account))["perk"] is None
    assert (await client.post(f"/v1/capture/{key}x", json=signup())).status_code == 404


async def test_form_js_is_served_cacheable_and_posts_to_its_endpoint(client, account):
    await put_capture_settings(client, account, consent_text="Yes, email me </script>")
    key = await public_key(client, account)
    response = await client.get(f"/v1/capture/{key}/form.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age" in response.headers["cache-control"]
    script = response.text
    assert f'"/v1/capture/{key}"' in script
    assert "</script>" not in script and "Yes, email me \\u003c/script>" in script
    assert 'name: "website"' in script  # the honeypot
    assert "https://" not in script and "http://" not in script  # nothing loaded from elsewhere


async def test_a_form_post_without_a_thank_you_url_gets_a_page_in_the_visitors_language(
    client, account
):
    await put_capture_settings(client, account, double_opt_in=True)
    key = await public_key(client, account)
    body = urlencode({"email": "fr@example.com", "consent": "on"})
    response = await client.post(
        f"/v1/capture/{key}", content=body, headers={**FORM, "Accept-Language": "fr-CH,fr;q=0.9"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'lang="fr"' in response.text and "Merci de votre inscription." in response.text
    assert "confirmer" in response.text


async def test_a_form_field_with_nul_is_refused_naming_it(client, account, db):
    key = await public_key(client, account)
    body = urlencode({"email": "n@example.com", "consent": "on", "first_name": "Ja\x00ne"})
    response = await client.post(f"/v1/capture/{key}", content=body, headers=FORM)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["first_name"]
    assert await consents(db) == []


async def test_a_multipart_form_post_is_refused_with_415(client, account, db):
    key = await public_key(client, account)
    response = await client.post(
        f"/v1/capture/{key}",
        data={"email": "mp@example.com", "consent": "on"},
        files={"ignored": ("a.txt", b"x")},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    assert await consents(db) == []
