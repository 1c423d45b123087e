"""Two campaigns whose names differ only in case, created at the same instant: one wins."""

from __future__ import annotations

import asyncio

from leadflow.models import Campaign
from tests.support.api import auth
from tests.support.campaigns import campaign_body
from tests.support.database import count


async def test_concurrent_names_differing_in_case(client, account, db):
    bodies = [campaign_body(name="Spring recovery"), campaign_body(name="SPRING RECOVERY")]
    responses = await asyncio.gather(
        *(client.post("/v1/campaigns", json=b, headers=auth(account)) for b in bodies)
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    (refused,) = [r for r in responses if r.status_code == 409]
    assert refused.json()["errors"][0]["field"] == "name"
    assert await count(db, Campaign) == 1


async def test_an_archived_name_can_be_reused_in_another_case(client, account, db):
    first = await client.post(
        "/v1/campaigns", json=campaign_body(name="Spring recovery"), headers=auth(account)
    )
    await client.delete(f"/v1/campaigns/{first.json()['id']}", headers=auth(account))
    again = await client.post(
        "/v1/campaigns", json=campaign_body(name="spring RECOVERY"), headers=auth(account)
    )
    assert again.status_code == 201, again.text
    assert await count(db, Campaign) == 2
