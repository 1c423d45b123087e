"""PUT/GET/DELETE /v1/integrations: write-only secrets, per account."""

from __future__ import annotations

import json

import pytest

from tests.integrations.helpers import (
    NOTHING,
    PAYPRO_SECRET,
    PAYPRO_VALIDATION_KEY,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WC_SECRET,
    checkout_session,
    configure,
    post_stripe,
    stripe_event,
    unix,
    written,
)
from tests.support.api import assert_problem, auth, error_fields

PLATFORMS = ["stripe", "shopify", "woocommerce", "paypro", "postmark", "sendgrid", "mailgun", "ses"]


async def test_listing_shows_every_platform_and_never_a_secret(client, account, clock):
    response = await client.get("/v1/integrations", headers=auth(account))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    assert [i["platform"] for i in page["items"]] == PLATFORMS
    assert all(i["configured"] is False and i["updated_at"] is None for i in page["items"])
    assert page["items"][0]["webhook_url"] == (
        f"http://testserver/v1/webhooks/{account['id']}/stripe"
    )

    await configure(client, account, "stripe", STRIPE_SECRET)
    await configure(client, account, "shopify", SHOPIFY_SECRET)
    await configure(client, account, "woocommerce", WC_SECRET)
    put = await configure(client, account, "paypro", PAYPRO_SECRET, PAYPRO_VALIDATION_KEY)
    assert put == {
        "platform": "paypro",
        "configured": True,
        "webhook_url": f"http://testserver/v1/webhooks/{account['id']}/paypro",
        "updated_at": "2026-01-15T12:00:00Z",
    }
    response = await client.get("/v1/integrations", headers=auth(account))
    text = response.text
    for secret in (STRIPE_SECRET, SHOPIFY_SECRET, WC_SECRET, PAYPRO_SECRET, PAYPRO_VALIDATION_KEY):
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text
    items = response.json()["items"][:4]  # the commerce platforms, all four configured
    assert all(i["configured"] is True for i in items)
    assert all(set(i) == {"platform", "configured", "webhook_url", "updated_at"} for i in items)


async def test_put_replaces_the_secret_and_updates_the_time(client, account, clock):
    await configure(client, account, "shopify", "first-secret")
    clock.advance(minutes=5)
    out = await configure(client, account, "shopify", SHOPIFY_SECRET)
    assert out["updated_at"] == "2026-01-15T12:05:00Z"


async def test_delete_removes_it_and_deliveries_then_get_409(client, account, clock, db):
    await configure(client, account, "stripe", STRIPE_SECRET)
    response = await client.delete("/v1/integrations/stripe", headers=auth(account))
    assert response.status_code == 204
    listed = (await client.get("/v1/integrations", headers=auth(account))).json()["items"]
    assert listed[0] == {**listed[0], "platform": "stripe", "configured": False}
    again = await client.delete("/v1/integrations/stripe", headers=auth(account))
    assert_problem(again, 404, "not_found", detailed=True)
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    assert_problem(
        await post_stripe(client, account, event, clock),
        409,
        "integration_not_configured",
        detailed=True,
    )
    assert await written(db) == NOTHING


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_unknown_platform_is_404(client, account, method):
    response = await client.request(
        method, "/v1/integrations/magento", json={"secret": "x"}, headers=auth(account)
    )
    assert_problem(response, 404, "not_found", detailed=True)
    # Even with a body that would not validate: the platform is checked first.
    bad = await client.put("/v1/integrations/magento", json={"nope": 1}, headers=auth(account))
    assert_problem(bad, 404, "not_found", detailed=True)


async def test_requires_the_api_key(client, account):
    for method, path in [
        ("GET", "/v1/integrations"),
        ("PUT", "/v1/integrations/stripe"),
        ("DELETE", "/v1/integrations/stripe"),
        ("PUT", "/v1/integrations/magento"),
    ]:
        response = await client.request(method, path, json={"secret": STRIPE_SECRET})
        assert_problem(response, 401, "unauthorized", detailed=True)


@pytest.mark.parametrize(
    ("platform", "body", "field"),
    [
        ("stripe", {"secret": "sk_live_51H8abc"}, "secret"),
        ("stripe", {"secret": "   "}, "secret"),
        ("stripe", {"secret": ""}, "secret"),
        ("stripe", {"secret": "whsec_a\u0000b"}, "secret"),
        ("stripe", {}, "secret"),
        ("shopify", {"secret": "x", "validation_key": "y"}, "validation_key"),
        ("paypro", {"secret": PAYPRO_SECRET}, "validation_key"),
        ("paypro", {"secret": PAYPRO_SECRET, "validation_key": ""}, "validation_key"),
        ("woocommerce", {"secret": "x", "webhook_id": 3}, "webhook_id"),
        ("woocommerce", {"secret": 12}, "secret"),
    ],
)
async def test_invalid_credentials_are_refused(client, account, platform, body, field):
    response = await client.put(f"/v1/integrations/{platform}", json=body, headers=auth(account))
    problem = assert_problem(response, 422, "validation_error", detailed=True)
    assert field in error_fields(problem)
    listed = (await client.get("/v1/integrations", headers=auth(account))).json()["items"]
    assert not any(i["configured"] for i in listed)


async def test_secret_is_trimmed(client, account, clock, db):
    await configure(client, account, "stripe", f"  {STRIPE_SECRET}\n")
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text


async def test_integrations_are_per_account(client, account, other_account, clock, db):
    await configure(client, account, "stripe", STRIPE_SECRET)
    theirs = (await client.get("/v1/integrations", headers=auth(other_account))).json()["items"]
    assert not any(i["configured"] for i in theirs)
    assert theirs[0]["webhook_url"].endswith(f"/v1/webhooks/{other_account['id']}/stripe")
    # The other account cannot remove it either.
    response = await client.delete("/v1/integrations/stripe", headers=auth(other_account))
    assert_problem(response, 404, "not_found", detailed=True)
    mine = (await client.get("/v1/integrations", headers=auth(account))).json()["items"]
    assert mine[0]["configured"] is True
    # A delivery signed with account A's secret, sent to account B's URL: B has no secret.
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, other_account, event, clock)
    assert_problem(response, 409, "integration_not_configured", detailed=True)
    # ... and once B has its own secret, A's signature does not verify for B.
    await configure(client, other_account, "stripe", "whsec_other_account_secret")
    response = await post_stripe(client, other_account, event, clock)
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING
