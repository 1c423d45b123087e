"""`GET /v1/campaigns/{id}/ab-test` figures, and the validation of `ab_test` settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from leadflow.abtest.statistics import probability_best, two_proportion_p_value, wilson_interval
from leadflow.models import AbTest, Campaign, Enrollment
from tests.support.api import assert_problem, auth
from tests.support.campaigns import patch_campaign
from tests.support.database import count
from tests.support.events import NOW, iso, purchase
from tests.support.results import (
    TWO_STEPS,
    ab_result,
    click_path,
    create_ab_campaign,
    leads_per_variant,
    no_min_delays,
)


async def test_result_fields(client, account, other_account, clock, dispatcher, smtp_sink, db):
    await no_min_delays(client, account)
    settings = {"criterion": "conversions", "threshold": 50, "keep_best": True}
    campaign, ids = await create_ab_campaign(client, account, settings, steps=TWO_STEPS)
    cid = campaign["id"]
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 3, "B": 3})
    assert (await dispatcher.run_once()).sent == 6
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["A"][0], amount="49.00", currency="EUR")
    await purchase(client, account, clock, leads["B"][0], amount="20.00", currency="USD")
    await purchase(client, account, clock, leads["B"][1], amount="30.00", currency="EUR")
    clock.set(NOW + dt.timedelta(hours=1))
    assert (await dispatcher.run_once()).sent == 3  # step 2: A's two others, B's third
    for lead in (leads["A"][1], leads["A"][1], leads["B"][2]):
        clock.advance(minutes=1)
        response = await client.get(click_path(smtp_sink.messages, lead, index=1))
        assert response.status_code == 302

    result = await ab_result(client, account, cid)
    assert result["campaign_id"] == cid
    assert (result["state"], result["winner_variant_id"], result["decided_at"]) == (
        "running",
        None,
        None,
    )
    assert result["settings"] == {
        "criterion": "conversions",
        "threshold": "50",
        "currency": None,
        "ends_at": None,
        "keep_best": True,
        "continue_variant_id": None,
        "min_confidence": None,
    }
    a, b = result["variants"]
    assert (a["variant_id"], a["name"], a["weight"]) == (ids["A"], "A", 1)
    assert (b["variant_id"], b["name"], b["weight"]) == (ids["B"], "B", 1)

    # Leads assigned: every enrollment, also those suppressed before their first follow-up.
    async with db.session() as session:
        assigned = dict(
            (
                await session.execute(
                    select(Enrollment.variant_id, func.count())
                    .where(Enrollment.campaign_id == cid)
                    .group_by(Enrollment.variant_id)
                )
            ).all()
        )
    assert a["leads_assigned"] == assigned[ids["A"]] >= 3
    assert b["leads_assigned"] == assigned[ids["B"]] >= 3

    assert a["followups_sent"] == {"1": 3, "2": 2}
    assert b["followups_sent"] == {"1": 3, "2": 1}
    assert a["targeted_leads"] == b["targeted_leads"] == 3
    assert (a["unique_visitors"], b["unique_visitors"]) == (1, 1)
    assert (a["conversions"], b["conversions"]) == (1, 2)
    assert a["conversion_rate"] == pytest.approx(1 / 3)
    assert b["conversion_rate"] == pytest.approx(2 / 3)
    assert a["conversion_rate_ci95"] == pytest.approx(list(wilson_interval(1, 3)))
    assert b["conversion_rate_ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    assert a["conversion_rate_ci95"][0] < a["conversion_rate"] < a["conversion_rate_ci95"][1]
    assert a["revenue"] == {"EUR": "49.00"}
    assert b["revenue"] == {"EUR": "30.00", "USD": "20.00"}
    probs = [a["probability_best"], b["probability_best"]]
    assert sum(probs) == pytest.approx(1.0)
    assert probs == pytest.approx(probability_best([(1, 3), (2, 3)]))
    assert probs[1] > probs[0]
    assert a["p_value_vs_first"] is None
    assert b["p_value_vs_first"] == pytest.approx(two_proportion_p_value(1, 3, 2, 3))
    assert 0 < b["p_value_vs_first"] < 1

    # Another account cannot see it.
    response = await client.get(f"/v1/campaigns/{cid}/ab-test", headers=auth(other_account))
    assert_problem(response, 404)


async def test_result_before_any_follow_up(client, account):
    await no_min_delays(client, account)
    campaign, _ = await create_ab_campaign(client, account, None)
    result = await ab_result(client, account, campaign["id"])
    assert result["settings"] is None and result["state"] == "running"
    for variant in result["variants"]:
        assert variant["leads_assigned"] == 0 and variant["followups_sent"] == {}
        assert variant["conversion_rate"] is None
        assert variant["conversion_rate_ci95"] is None
        assert variant["probability_best"] is None
        assert variant["p_value_vs_first"] is None
        assert variant["revenue"] == {}


ENDS = "2026-02-01T00:00:00Z"
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"criterion": "conversions"}, "ab_test"),
    ({"criterion": "conversions", "threshold": 0}, "ab_test"),
    ({"criterion": "conversions", "threshold": "2.5"}, "ab_test"),
    ({"criterion": "unique_visitors", "threshold": -3}, "ab_test"),
    ({"criterion": "revenue", "threshold": "100"}, "ab_test"),
    ({"criterion": "revenue", "threshold": "100", "currency": "EURO"}, "ab_test.currency"),
    ({"criterion": "time_range"}, "ab_test"),
    ({"criterion": "time_range", "ends_at": "2026-02-01T00:00:00"}, "ab_test.ends_at"),
    (
        {"criterion": "conversions", "threshold": 5, "keep_best": True, "continue_variant_id": "x"},
        "ab_test",
    ),
    ({"criterion": "time_range", "ends_at": ENDS, "min_confidence": 1.5}, "ab_test.min_confidence"),
    ({"criterion": "time_range", "ends_at": ENDS, "min_confidence": 0.5}, "ab_test.min_confidence"),
    ({"criterion": "clicks", "threshold": 5}, "ab_test.criterion"),
    ({"criterion": "conversions", "threshold": 5, "winner": "A"}, "ab_test.winner"),
]


async def test_invalid_settings_on_create_write_nothing(client, account, db):
    await no_min_delays(client, account)
    body = {
        "name": "Cart recovery A/B",
        "source": "abandoned_checkout",
        "status": "active",
        "variants": [
            {"name": "A", "steps": TWO_STEPS[:1]},
            {"name": "B", "steps": TWO_STEPS[:1]},
        ],
    }
    for settings, field in INVALID:
        response = await client.post(
            "/v1/campaigns", json={**body, "ab_test": settings}, headers=auth(account)
        )
        assert_problem(response, 422, field=field)
    # A variant id that is not the campaign's is refused after the campaign was built:
    # the whole request is rolled back.
    settings = {"criterion": "conversions", "threshold": 5, "continue_variant_id": "var_x"}
    response = await client.post(
        "/v1/campaigns", json={**body, "ab_test": settings}, headers=auth(account)
    )
    assert_problem(response, 422, field="ab_test.continue_variant_id")
    assert await count(db, Campaign) == 0
    assert await count(db, AbTest) == 0


async def test_invalid_settings_on_patch_change_nothing(client, account, clock, db):
    await no_min_delays(client, account)
    settings = {"criterion": "revenue", "threshold": "250", "currency": "EUR"}
    campaign, _ = await create_ab_campaign(client, account, settings)
    path = f"/v1/campaigns/{campaign['id']}"
    before = (await client.get(path, headers=auth(account))).json()
    assert before["ab_test"]["threshold"] == "250" and before["ab_test"]["currency"] == "EUR"

    clock.advance(minutes=1)
    for bad, field in INVALID:
        assert_problem(
            await patch_campaign(client, account, campaign["id"], ab_test=bad), 422, field=field
        )
    unknown = {"criterion": "conversions", "threshold": 5, "continue_variant_id": "var_x"}
    response = await patch_campaign(client, account, campaign["id"], ab_test=unknown)
    assert_problem(response, 422, field="ab_test.continue_variant_id")
    # Together with a valid change: nothing of it is kept either.
    response = await patch_campaign(
        client, account, campaign["id"], name="Renamed", ab_test=unknown
    )
    assert_problem(response, 422, field="ab_test.continue_variant_id")
    assert (await client.get(path, headers=auth(account))).json() == before

    # A valid change is kept, and shown back in UTC.
    good = {"criterion": "time_range", "ends_at": "2026-02-01T01:00:00+01:00", "keep_best": True}
    response = await patch_campaign(client, account, campaign["id"], ab_test=good)
    assert response.status_code == 200, response.text
    shown = response.json()["ab_test"]
    assert shown["criterion"] == "time_range" and shown["ends_at"] == iso(
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    )
    assert shown["threshold"] is None and shown["keep_best"] is True
    assert shown["state"] == "running"
