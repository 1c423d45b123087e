"""How an A/B test picks its winner: each criterion with a scripted sequence of follow-ups,
purchases and checkout visits (variants A and B, weights 1:1, A created first).

Tie rules (README "Results and A/B tests"): the variant that reached the threshold at the
earlier instant wins; at the same instant the higher total, then the variant created first.
By conversion rate: the higher rate, then the higher probability of being best, then the
variant created first.
"""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.abtest.service import evaluate_running
from leadflow.abtest.statistics import probability_best
from tests.abtest.helpers import decide, decided_deliveries, subscribe_decisions
from tests.support.api import auth
from tests.support.campaigns import patch_campaign
from tests.support.events import NOW, iso, purchase
from tests.support.results import (
    ab_result,
    click_path,
    create_ab_campaign,
    leads_per_variant,
    no_min_delays,
)


def state_of(result: dict) -> tuple[str, str | None]:
    return result["state"], result["winner_variant_id"]


async def test_conversions_first_variant_to_threshold_wins_at_once(
    client, account, clock, dispatcher, db
):
    await no_min_delays(client, account)
    await subscribe_decisions(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 2}
    )
    cid = campaign["id"]
    assert campaign["ab_test"]["state"] == "running"
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4

    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["B"][0])
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["A"][0])
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("running", None)
    assert result["decided_at"] is None and result["reason"] is None
    assert [v["conversions"] for v in result["variants"]] == [1, 1]

    # B's second conversion decides the test in the purchase's own transaction: no worker.
    clock.advance(minutes=10)
    decided_at = clock.now()
    await purchase(client, account, clock, leads["B"][1])
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("decided", ids["B"])
    assert result["decided_at"] == iso(decided_at)
    assert result["reason"] == "variant B reached 2 conversions first"
    shown = (await client.get(f"/v1/campaigns/{cid}", headers=auth(account))).json()
    assert shown["ab_test"]["state"] == "decided"
    assert shown["ab_test"]["winner_variant_id"] == ids["B"]

    # A catching up later changes nothing.
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["A"][1])
    assert await evaluate_running(db, clock) == 0
    again = await ab_result(client, account, cid)
    assert state_of(again) == ("decided", ids["B"])
    assert again["decided_at"] == iso(decided_at)
    assert [v["conversions"] for v in again["variants"]] == [2, 2]

    (delivery,) = await decided_deliveries(db)
    assert delivery.status == "pending"
    assert delivery.payload["type"] == "abtest.decided"
    data = delivery.payload["data"]
    assert data["campaign_id"] == cid and data["state"] == "decided"
    assert data["winner_variant_id"] == ids["B"] and data["winner_name"] == "B"
    assert data["reason"] == "variant B reached 2 conversions first"
    assert data["decided_at"] == iso(decided_at)


async def test_revenue_counts_only_the_test_currency(client, account, clock, dispatcher, db):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "revenue", "threshold": "100", "currency": "eur"}
    )
    cid = campaign["id"]
    assert campaign["ab_test"]["currency"] == "EUR"
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4

    clock.advance(minutes=5)
    await purchase(client, account, clock, leads["B"][0], amount="500.00", currency="USD")
    clock.advance(minutes=5)
    await purchase(client, account, clock, leads["A"][0], amount="60.00", currency="EUR")
    clock.advance(minutes=5)
    await purchase(client, account, clock, leads["B"][1], amount="60.00", currency="EUR")
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("running", None)  # B has 560 in money, but 60 EUR
    assert [v["revenue"] for v in result["variants"]] == [
        {"EUR": "60.00"},
        {"EUR": "60.00", "USD": "500.00"},
    ]

    clock.advance(minutes=5)
    decided_at = clock.now()
    await purchase(client, account, clock, leads["A"][1], amount="40.00", currency="EUR")
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("decided", ids["A"])
    assert result["decided_at"] == iso(decided_at)
    assert result["reason"] == "variant A reached 100.00 EUR revenue first"
    assert result["variants"][0]["revenue"] == {"EUR": "100.00"}


async def test_unique_visitors_through_tracked_links(
    client, account, clock, dispatcher, smtp_sink, db
):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "unique_visitors", "threshold": 2}
    )
    cid = campaign["id"]
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4
    received = smtp_sink.messages

    async def visit(lead) -> None:
        clock.advance(minutes=1)
        response = await client.get(click_path(received, lead))
        assert response.status_code == 302, response.text
        assert response.headers["location"] == f"https://shop.example.com/recover/{lead.reference}"

    await visit(leads["B"][0])
    await visit(leads["B"][0])  # the same lead again: not a new visitor
    await visit(leads["A"][0])
    await visit(leads["B"][0])
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("running", None)
    assert [v["unique_visitors"] for v in result["variants"]] == [1, 1]

    await visit(leads["B"][1])
    decided_at = clock.now()
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("decided", ids["B"])
    assert result["decided_at"] == iso(decided_at)
    assert result["reason"] == "variant B reached 2 unique checkout visitors first"
    assert [v["unique_visitors"] for v in result["variants"]] == [1, 2]
    assert [v["conversions"] for v in result["variants"]] == [0, 0]


async def test_time_range_decides_at_ends_at_by_conversion_rate(
    client, account, clock, dispatcher, db
):
    await no_min_delays(client, account)
    await subscribe_decisions(client, account)
    ends_at = NOW + dt.timedelta(days=1)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "time_range", "ends_at": "2026-01-16T13:00:00+01:00"}
    )
    cid = campaign["id"]
    assert campaign["ab_test"]["ends_at"] == iso(ends_at)
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4
    clock.advance(hours=1)
    await purchase(client, account, clock, leads["A"][0])  # A 1 of 2, B 0 of 2

    # Nothing is decided before ends_at, by a purchase or by the worker.
    assert state_of(await ab_result(client, account, cid)) == ("running", None)
    assert await evaluate_running(db, clock) == 0
    clock.set(ends_at - dt.timedelta(seconds=1))
    assert await evaluate_running(db, clock) == 0
    assert state_of(await ab_result(client, account, cid)) == ("running", None)
    assert await decided_deliveries(db) == []

    clock.set(ends_at)
    assert await evaluate_running(db, clock) == 1
    result = await ab_result(client, account, cid)
    assert state_of(result) == ("decided", ids["A"])
    assert result["decided_at"] == iso(ends_at)
    assert result["reason"].startswith("the test ended at 2026-01-16T12:00:00Z; ")
    assert "variant A had the best conversion rate (A 50.0%, B 0.0%" in result["reason"]
    clock.advance(minutes=1)
    assert await evaluate_running(db, clock) == 0
    assert len(await decided_deliveries(db)) == 1


async def test_threshold_test_with_a_safety_end(client, account, clock, dispatcher, db):
    """`ends_at` on a threshold criterion: nobody reached it by then, so the best conversion
    rate decides."""
    await no_min_delays(client, account)
    ends_at = NOW + dt.timedelta(days=2)
    settings = {"criterion": "conversions", "threshold": 5, "ends_at": iso(ends_at)}
    campaign, ids = await create_ab_campaign(client, account, settings)
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4
    clock.advance(hours=1)
    await purchase(client, account, clock, leads["B"][0])
    clock.set(ends_at - dt.timedelta(seconds=1))
    assert await evaluate_running(db, clock) == 0
    clock.set(ends_at)
    assert await evaluate_running(db, clock) == 1
    result = await ab_result(client, account, campaign["id"])
    assert state_of(result) == ("decided", ids["B"])
    assert result["reason"].startswith("the test ended at 2026-01-17T12:00:00Z; ")
    assert "variant B had the best conversion rate (A 0.0%, B 50.0%" in result["reason"]


@pytest.mark.parametrize(
    ("wins", "expected_state"),
    [({"A": (1, 2), "B": (0, 2)}, "inconclusive"), ({"A": (3, 3), "B": (0, 3)}, "decided")],
    ids=["close", "clear"],
)
async def test_min_confidence(client, account, clock, dispatcher, db, wins, expected_state):
    await no_min_delays(client, account)
    await subscribe_decisions(client, account)
    ends_at = NOW + dt.timedelta(days=1)
    settings = {"criterion": "time_range", "ends_at": iso(ends_at), "min_confidence": 0.95}
    campaign, ids = await create_ab_campaign(client, account, settings)
    cid = campaign["id"]
    wanted = {name: n for name, (_, n) in wins.items()}
    leads = await leads_per_variant(client, account, clock, db, ids, wanted)
    assert (await dispatcher.run_once()).sent == sum(wanted.values())
    for name, (k, _) in wins.items():
        for lead in leads[name][:k]:
            clock.advance(minutes=1)
            await purchase(client, account, clock, lead)
    probs = probability_best([wins["A"], wins["B"]])

    clock.set(ends_at)
    assert await evaluate_running(db, clock) == 1
    result = await ab_result(client, account, cid)
    assert result["decided_at"] == iso(ends_at)
    assert [v["probability_best"] for v in result["variants"]] == pytest.approx(probs)
    (delivery,) = await decided_deliveries(db)
    assert delivery.payload["data"]["state"] == expected_state
    if expected_state == "inconclusive":
        assert probs[0] < 0.95
        assert state_of(result) == ("inconclusive", None)
        assert "no variant reached 95% probability of being best" in result["reason"]
        assert delivery.payload["data"]["winner_variant_id"] is None
        # An inconclusive test can still be decided by hand.
        response = await decide(client, account, cid, ids["B"])
        assert response.status_code == 200, response.text
        assert state_of(response.json()) == ("decided", ids["B"])
        assert len(await decided_deliveries(db)) == 2
    else:
        assert probs[0] >= 0.95
        assert state_of(result) == ("decided", ids["A"])
        assert delivery.payload["data"]["winner_variant_id"] == ids["A"]


async def _rates(client, account, clock, dispatcher, db, wins: dict[str, tuple[int, int]]):
    """A time_range test ending tomorrow; ``wins[name] = (conversions, targeted leads)``;
    evaluated at its end. Returns the result and the variant ids."""
    await no_min_delays(client, account)
    ends_at = NOW + dt.timedelta(days=1)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "time_range", "ends_at": iso(ends_at)}
    )
    wanted = {name: n for name, (_, n) in wins.items()}
    leads = await leads_per_variant(client, account, clock, db, ids, wanted)
    assert (await dispatcher.run_once()).sent == sum(wanted.values())
    for name, (k, _) in wins.items():
        for lead in leads[name][:k]:
            clock.advance(minutes=1)
            await purchase(client, account, clock, lead)
    clock.set(ends_at)
    assert await evaluate_running(db, clock) == 1
    result = await ab_result(client, account, campaign["id"])
    assert [(v["conversions"], v["targeted_leads"]) for v in result["variants"]] == [
        wins["A"],
        wins["B"],
    ]
    return result, ids


async def test_rate_tie_goes_to_the_older_variant(client, account, clock, dispatcher, db):
    # Same conversions out of the same number of leads: the same rate and, in truth, the
    # same probability of being best (floating-point noise must not break the tie).
    result, ids = await _rates(client, account, clock, dispatcher, db, {"A": (1, 3), "B": (1, 3)})
    assert state_of(result) == ("decided", ids["A"])
    assert "variant A had the best conversion rate" in result["reason"]


async def test_rate_tie_goes_to_the_higher_probability(client, account, clock, dispatcher, db):
    # 2 of 6 and 1 of 3: the same rate, but B (the newer variant) is more likely the best.
    result, ids = await _rates(client, account, clock, dispatcher, db, {"A": (2, 6), "B": (1, 3)})
    probs = [v["probability_best"] for v in result["variants"]]
    assert probs[1] > probs[0]
    assert state_of(result) == ("decided", ids["B"])


@pytest.mark.parametrize(
    ("ab", "winner", "reason"),
    [
        (
            {"criterion": "revenue", "threshold": "50", "currency": "EUR"},
            "B",
            "variant B reached 50.00 EUR revenue first",
        ),
        (
            {"criterion": "conversions", "threshold": 1},
            "A",
            "variant A reached 1 conversion first",
        ),
    ],
    ids=["higher-total", "older-variant"],
)
async def test_same_instant(client, account, clock, dispatcher, db, ab, winner, reason):
    """Both variants pass the threshold at the same instant (two purchases with the same
    time; the settings are added afterwards and the worker decides): the higher total wins
    (80 EUR against 60 EUR), and with equal totals (one conversion each) the older variant."""
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(client, account, None)
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 1})
    assert (await dispatcher.run_once()).sent == 2
    clock.advance(minutes=30)
    # B's purchase arrives first; both carry the same time.
    await purchase(client, account, clock, leads["B"][0], amount="80.00")
    await purchase(client, account, clock, leads["A"][0], amount="60.00")

    response = await patch_campaign(client, account, campaign["id"], ab_test=ab)
    assert response.status_code == 200, response.text
    assert response.json()["ab_test"]["state"] == "running"  # saving settings decides nothing
    clock.advance(minutes=1)
    assert await evaluate_running(db, clock) == 1
    result = await ab_result(client, account, campaign["id"])
    assert state_of(result) == ("decided", ids[winner])
    assert result["reason"] == reason
    assert result["decided_at"] == iso(clock.now())


async def test_time_range_counts_only_what_happened_before_ends_at(
    client, account, clock, dispatcher, db
):
    await no_min_delays(client, account)
    ends_at = NOW + dt.timedelta(days=1)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "time_range", "ends_at": iso(ends_at)}
    )
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 2})
    assert (await dispatcher.run_once()).sent == 4
    clock.advance(hours=1)
    await purchase(client, account, clock, leads["B"][0])  # before the end: B 1 of 2

    # The worker is late: after ends_at A converts twice. Counting those would make A the
    # winner (a tie goes to the older variant); as of ends_at the test was B's.
    clock.set(ends_at + dt.timedelta(minutes=5))
    await purchase(client, account, clock, leads["A"][0])
    await purchase(client, account, clock, leads["A"][1])
    result = await ab_result(client, account, campaign["id"])
    assert state_of(result) == ("decided", ids["B"])
    assert "A 0.0%, B 50.0%" in result["reason"]
