"""Who gets new leads once an A/B test ends: keep_best, continue_variant_id, neither, or the
merchant's choice. Leads already in a sequence always finish it in their own variant."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from leadflow.models import AbTest, Message
from tests.abtest.helpers import (
    ab_row,
    decide,
    decided_deliveries,
    hashed_variant,
    lead_hashed_to,
    subscribe_decisions,
)
from tests.support.api import assert_problem, auth
from tests.support.campaigns import patch_campaign
from tests.support.events import NOW, iso, purchase
from tests.support.results import (
    TWO_STEPS,
    ab_result,
    create_ab_campaign,
    leads_per_variant,
    new_lead,
    no_min_delays,
    variant_of,
)


async def sent_steps(db, lead_id: str) -> list[tuple[int, str, str]]:
    async with db.session() as session:
        rows = await session.execute(
            select(Message.step, Message.variant_id, Message.status)
            .where(Message.lead_id == lead_id)
            .order_by(Message.step)
        )
        return [tuple(r) for r in rows]


async def test_split_is_a_sticky_hash_of_the_lead_id(client, account, clock, db):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 3}
    )
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 3, "B": 3})
    split = [(ids["A"], 1), (ids["B"], 1)]
    for name, group in leads.items():
        for lead in group:
            assert hashed_variant(lead.id, split) == ids[name]
    # The same checkout captured again is the same lead, and stays where it is.
    before = await ab_result(client, account, campaign["id"])
    for name, group in leads.items():
        clock.advance(minutes=1)
        again = await new_lead(client, account, clock, reference=group[0].reference)
        assert again.id == group[0].id
        assert await variant_of(db, again.id) == ids[name]
    after = await ab_result(client, account, campaign["id"])
    assert [v["leads_assigned"] for v in after["variants"]] == [
        v["leads_assigned"] for v in before["variants"]
    ]


async def test_keep_best_routes_new_leads_to_the_winner_and_lets_others_finish(
    client, account, clock, dispatcher, smtp_sink, db
):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client,
        account,
        {"criterion": "conversions", "threshold": 1, "keep_best": True},
        steps=TWO_STEPS,
    )
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 2})
    assert (await dispatcher.run_once()).sent == 3
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["B"][0])
    assert (await ab_row(db, campaign["id"])).winner_variant_id == ids["B"]

    # A new lead that the split would give to A goes to the winner B.
    newcomer, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "A")
    assert enrolled_in == ids["B"]

    # A's lead, already in its sequence, still gets its step 2 from A; so does B's other lead.
    clock.set(NOW + dt.timedelta(hours=1))
    report = await dispatcher.run_once()
    assert report.sent >= 3, report  # step 2 for A's and B's leads, step 1 for the new ones
    assert await sent_steps(db, leads["A"][0].id) == [(1, ids["A"], "sent"), (2, ids["A"], "sent")]
    assert await sent_steps(db, leads["B"][1].id) == [(1, ids["B"], "sent"), (2, ids["B"], "sent")]
    assert (await sent_steps(db, newcomer.id))[0] == (1, ids["B"], "sent")
    assert await sent_steps(db, leads["B"][0].id) == [(1, ids["B"], "sent")]  # it bought

    result = await ab_result(client, account, campaign["id"])
    followups = {v["variant_id"]: v["followups_sent"] for v in result["variants"]}
    assert followups[ids["A"]] == {"1": 1, "2": 1}


async def test_continue_variant_routes_new_leads_once_the_test_ends(
    client, account, clock, dispatcher, db
):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 1}
    )
    settings = {"criterion": "conversions", "threshold": 1, "continue_variant_id": ids["A"]}
    response = await patch_campaign(client, account, campaign["id"], ab_test=settings)
    assert response.status_code == 200, response.text
    assert response.json()["ab_test"]["continue_variant_id"] == ids["A"]

    # While the test runs the split is untouched: B gets its leads.
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 1})
    assert (await dispatcher.run_once()).sent == 2
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["B"][0])
    result = await ab_result(client, account, campaign["id"])
    assert (result["state"], result["winner_variant_id"]) == ("decided", ids["B"])

    # B won, but new leads go to the variant chosen to continue.
    _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "B")
    assert enrolled_in == ids["A"]
    _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "A")
    assert enrolled_in == ids["A"]


async def test_neither_keeps_splitting_after_the_decision(client, account, clock, dispatcher, db):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 1}
    )
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 1})
    assert (await dispatcher.run_once()).sent == 2
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["B"][0])
    assert (await ab_row(db, campaign["id"])).state == "decided"

    for name in ("A", "B"):
        _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, name)
        assert enrolled_in == ids[name]


async def test_decide_by_hand(client, account, other_account, clock, dispatcher, db):
    await no_min_delays(client, account)
    await subscribe_decisions(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 5}
    )
    cid = campaign["id"]
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 1})
    assert (await dispatcher.run_once()).sent == 2

    assert_problem(await decide(client, account, cid, "var_nope"), 422, field="variant_id")
    assert_problem(await decide(client, other_account, cid, ids["A"]), 404)
    response = await client.post(
        f"/v1/campaigns/{cid}/ab-test/decide", json={}, headers=auth(account)
    )
    assert_problem(response, 422, field="variant_id")
    assert (await ab_row(db, cid)).state == "running"

    clock.advance(minutes=3)
    response = await decide(client, account, cid, ids["A"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["winner_variant_id"]) == ("decided", ids["A"])
    assert body["decided_at"] == iso(clock.now())
    assert body["reason"] == "variant A was chosen by the merchant"
    assert body["settings"]["continue_variant_id"] == ids["A"]
    assert len(await decided_deliveries(db)) == 1

    # New leads only go to A; B's lead finishes in B.
    _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "B")
    assert enrolled_in == ids["A"]
    assert await variant_of(db, leads["B"][0].id) == ids["B"]

    # Decided once: a second decision, and changing the settings, are refused.
    assert_problem(await decide(client, account, cid, ids["B"]), 409)
    assert_problem(await decide(client, account, cid, ids["A"]), 409)
    response = await patch_campaign(
        client, account, cid, ab_test={"criterion": "conversions", "threshold": 1}
    )
    assert_problem(response, 409)
    row = await ab_row(db, cid)
    assert (row.state, row.winner_variant_id) == ("decided", ids["A"])
    assert len(await decided_deliveries(db)) == 1
    # B reaching the old threshold later changes nothing either.
    clock.advance(minutes=3)
    await purchase(client, account, clock, leads["B"][0])
    assert (await ab_row(db, cid)).winner_variant_id == ids["A"]


async def test_decide_without_settings(client, account, clock, db):
    """A campaign with two variants and no ab_test settings can still be ended by hand."""
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(client, account, None)
    assert campaign["ab_test"] is None
    response = await decide(client, account, campaign["id"], ids["B"])
    assert response.status_code == 200, response.text
    shown = (await client.get(f"/v1/campaigns/{campaign['id']}", headers=auth(account))).json()
    assert shown["ab_test"]["state"] == "decided"
    assert shown["ab_test"]["winner_variant_id"] == ids["B"]
    _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "A")
    assert enrolled_in == ids["B"]
    async with db.session() as session:
        assert (await session.get(AbTest, campaign["id"])).continue_variant_id == ids["B"]


async def test_deciding_by_hand_a_keep_best_test_continues_the_chosen_variant(
    client, account, clock, db
):
    """A test set to keep the best, ended by the merchant's choice: the chosen variant is what
    new leads get (keep_best gives way), and the campaign reads back (it answered 500 when
    both were stored, which the settings forbid)."""
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 5, "keep_best": True}
    )
    response = await decide(client, account, campaign["id"], ids["B"])
    assert response.status_code == 200, response.text
    assert response.json()["settings"]["keep_best"] is False
    shown = await client.get(f"/v1/campaigns/{campaign['id']}", headers=auth(account))
    assert shown.status_code == 200, shown.text
    assert shown.json()["ab_test"]["continue_variant_id"] == ids["B"]
    _, enrolled_in = await lead_hashed_to(client, account, clock, db, ids, "A")
    assert enrolled_in == ids["B"]
