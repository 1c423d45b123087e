"""Templates cannot stall the worker with huge numbers or huge repeated text."""

from __future__ import annotations

import pytest

from leadflow.models import Campaign
from tests.support.api import assert_problem, auth
from tests.support.campaigns import campaign_body, custom_step, variant
from tests.support.database import count

HOSTILE = [
    "{{ 'x' * 10**9 }}",
    "{{ 10**9 * 'x' }}",
    "{{ 9**99**99**99 }}",
    "{{ 2 ** 100000 }}",
    "{{ (10**1000) * (10**1000) }}",
]


@pytest.mark.parametrize("source", HOSTILE)
async def test_hostile_arithmetic_is_refused_when_saved(client, account, db, source):
    body = campaign_body(variants=[variant(steps=[custom_step(text=source)])])
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert_problem(response, 422, field="variants[0].steps[0].text", typed=True)
    assert await count(db, Campaign) == 0


async def test_ordinary_arithmetic_still_works(client, account):
    text = "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 3 * 4 }} {{ 1.5 ** 2 }} {{ recovery_url }}"
    body = campaign_body(variants=[variant(steps=[custom_step(text=text)])])
    created = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert created.status_code == 201, created.text
    preview = await client.post(
        f"/v1/campaigns/{created.json()['id']}/preview", json={}, headers=auth(account)
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["text"].startswith("1024 ababab 12 2.25 ")
