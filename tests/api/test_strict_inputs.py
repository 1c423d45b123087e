"""What the document says a field is, the server holds it to: no lax coercions on input.

A client generated from ``openapi/openapi.json`` sends ``true`` for a boolean and ``5`` for an
integer; a server that also takes ``0``, ``"5"`` or ``5.0`` hides client bugs and lets a body
the schema forbids change data. Each case below is a body the schema refuses: the server
answers 422 naming the field and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import assert_problem, auth, ok_json
from tests.support.campaigns import campaign_body, create_campaign, variant


async def _settings(client, account) -> dict[str, Any]:
    return ok_json(await client.get("/v1/settings", headers=auth(account)))


@pytest.mark.parametrize("value", [0, 1, "true", "false", "yes"])
async def test_a_boolean_is_only_true_or_false(client, account, value):
    before = await _settings(client, account)
    response = await client.put(
        "/v1/settings", json={"lead_management_enabled": value}, headers=auth(account)
    )
    assert_problem(response, 422, code="validation_error", field="lead_management_enabled")
    assert await _settings(client, account) == before


CAMPAIGN_CASES = [
    pytest.param({"priority": "5"}, "priority", id="priority-string"),
    pytest.param({"priority": 5.0}, "priority", id="priority-float"),
    pytest.param({"priority": True}, "priority", id="priority-bool"),
    pytest.param({"variants": [{**variant(), "weight": "2"}]}, "variants[0].weight", id="weight"),
    pytest.param(
        {
            "variants": [variant(), variant("B")],
            "ab_test": {"criterion": "conversions", "threshold": 10, "keep_best": 1},
        },
        "ab_test.keep_best",
        id="keep-best-int",
    ),
    pytest.param(
        {
            "variants": [variant(), variant("B")],
            "ab_test": {"criterion": "conversions", "threshold": 10, "min_confidence": "0.95"},
        },
        "ab_test.min_confidence",
        id="confidence-string",
    ),
    pytest.param({"starts_at": 1767225600}, "starts_at", id="epoch-seconds"),
    pytest.param({"starts_at": "1767225600"}, "starts_at", id="epoch-string"),
]


@pytest.mark.parametrize(("fields", "where"), CAMPAIGN_CASES)
async def test_campaign_fields_take_their_documented_types_only(client, account, fields, where):
    response = await client.post(
        "/v1/campaigns", json=campaign_body(**fields), headers=auth(account)
    )
    assert_problem(response, 422, code="validation_error", field=where)
    listed = ok_json(await client.get("/v1/campaigns", headers=auth(account)))
    assert listed["items"] == []


@pytest.mark.parametrize("field", ["name", "source", "status", "products", "priority"])
async def test_patch_null_is_refused_where_the_schema_does_not_offer_it(client, account, field):
    """PATCH leaves out what it keeps; null for a field that cannot be empty is refused, and
    the document (tests/platform/test_openapi.py) does not offer null for it either."""
    campaign = await create_campaign(client, account)
    response = await client.patch(
        f"/v1/campaigns/{campaign['id']}", json={field: None}, headers=auth(account)
    )
    assert_problem(response, 422, field=field)
    after = ok_json(await client.get(f"/v1/campaigns/{campaign['id']}", headers=auth(account)))
    assert after[field] == campaign[field]


async def test_a_step_number_is_an_integer(client, account):
    campaign = await create_campaign(client, account)
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview", json={"step": "1"}, headers=auth(account)
    )
    assert_problem(response, 422, code="validation_error", field="step")
    ok = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview", json={"step": 1}, headers=auth(account)
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/v1/leads", {"stauts": "open"}, ["stauts"]),
        ("/v1/leads", {"status": "open", "sort": "score", "page": "2"}, ["page", "sort"]),
        ("/v1/campaigns", {"include_archived": "true", "state": "active"}, ["state"]),
        ("/v1/stats", {"from": "2026-01-01", "until": "2026-01-02"}, ["until"]),
        ("/v1/iln/deliveries", {"status": "failed", "endpoint": "x"}, ["endpoint"]),
        ("/v1/settings", {"verbose": "1"}, ["verbose"]),
    ],
)
async def test_an_unknown_query_parameter_is_named_not_ignored(
    client, account, path, params, unknown
):
    """A misspelt filter would otherwise answer every row as if it applied."""
    response = await client.get(path, params=params, headers=auth(account))
    body = assert_problem(response, 422, code="validation_error")
    assert [e["field"] for e in body["errors"]] == unknown
    assert {e["message"] for e in body["errors"]} == {"unknown query parameter"}
    known = {k: v for k, v in params.items() if k not in unknown}
    assert (await client.get(path, params=known, headers=auth(account))).status_code == 200
