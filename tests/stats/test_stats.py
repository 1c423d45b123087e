"""`GET /v1/stats` and `GET /v1/campaigns/{id}/stats`: what is counted, where and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from leadflow.models import Message
from tests.support.api import assert_problem, auth, get_json, put_settings
from tests.support.campaigns import create_campaign
from tests.support.database import count
from tests.support.events import NOW, Lead, purchase
from tests.support.results import (
    ONE_STEP,
    TWO_STEPS,
    create_ab_campaign,
    leads_per_variant,
    new_lead,
    no_min_delays,
)

ZERO = {
    "value": {},
    "value_converted": None,
    "followups_sent": 0,
    "targeted_leads": 0,
    "converted_leads": 0,
    "conversion_rate": None,
    "bounces": 0,
    "complaints": 0,
    "bounce_rate": None,
    "complaint_rate": None,
}


def figures(value: dict[str, str], sent: int, targeted: int, converted: int) -> dict[str, Any]:
    return {
        "value": value,
        "value_converted": None,
        "followups_sent": sent,
        "targeted_leads": targeted,
        "converted_leads": converted,
        "conversion_rate": converted / targeted if targeted else None,
        "bounces": 0,
        "complaints": 0,
        "bounce_rate": 0.0 if sent else None,
        "complaint_rate": 0.0 if sent else None,
    }


def only(d: dict[str, Any], keys: tuple[str, ...] = tuple(ZERO)) -> dict[str, Any]:
    return {k: d[k] for k in keys}


@dataclass
class Scenario:
    de: dict[str, Any]  # campaign for every abandoned checkout (two steps)
    en: dict[str, Any]  # campaign for English leads (one step)
    leads: dict[str, Lead]


async def scenario(client, account, clock, dispatcher, smtp_sink) -> Scenario:
    """Two campaigns; five leads; sends at 12:10 (step 1) and 13:10 (step 2); purchases at
    12:00 (no follow-up before it), 12:30 (after step 1, USD) and 13:30 (after step 2, EUR)."""
    await no_min_delays(client, account, default_currency="EUR")
    de = await create_campaign(
        client, account, name="Cart recovery", status="active", steps=TWO_STEPS, variants=None
    )
    en = await create_campaign(
        client,
        account,
        name="Cart recovery EN",
        status="active",
        languages=["en"],
        variants=[{"name": "A", "steps": ONE_STEP}],
    )
    assert clock.now() == NOW
    leads = {name: await new_lead(client, account, clock) for name in ("L1", "L2", "L3")}
    leads["L5"] = await new_lead(client, account, clock, language="en")
    # L4 buys before any follow-up went out: counts neither as targeted nor as converted.
    leads["L4"] = await new_lead(client, account, clock)
    assert await purchase(client, account, clock, leads["L4"], amount="99.00", currency="USD")

    clock.set(NOW + dt.timedelta(minutes=10))
    report = await dispatcher.run_once()
    assert report.sent == 4, report  # step 1 to L1, L2, L3 (de) and L5 (en)
    clock.set(NOW + dt.timedelta(minutes=30))
    assert await purchase(client, account, clock, leads["L3"], amount="30.00", currency="USD")
    clock.set(NOW + dt.timedelta(hours=1, minutes=10))
    report = await dispatcher.run_once()
    assert report.sent == 2, report  # step 2 to L1 and L2; L3 bought, L5's campaign is done
    clock.set(NOW + dt.timedelta(hours=1, minutes=30))
    assert await purchase(client, account, clock, leads["L1"], amount="49.00", currency="EUR")
    assert len(smtp_sink.messages) == 6
    return Scenario(de=de, en=en, leads=leads)


async def test_overall_per_step_and_per_campaign(client, account, clock, dispatcher, smtp_sink, db):
    s = await scenario(client, account, clock, dispatcher, smtp_sink)
    body = await get_json(client, account, "/v1/stats")

    both = {"EUR": "49.00", "USD": "30.00"}
    assert body["overall"] == figures(both, sent=6, targeted=4, converted=2)
    assert body["overall"]["conversion_rate"] == 0.5
    # Per step: the leads that received that step, and the conversions credited to it.
    assert [only(st, ("step", *ZERO)) for st in body["steps"]] == [
        {"step": 1, **figures({"USD": "30.00"}, sent=4, targeted=4, converted=1)},
        {"step": 2, **figures({"EUR": "49.00"}, sent=2, targeted=2, converted=1)},
        {"step": 3, **ZERO},
    ]
    by_id = {c["campaign_id"]: c for c in body["campaigns"]}
    assert set(by_id) == {s.de["id"], s.en["id"]}
    assert by_id[s.de["id"]]["name"] == "Cart recovery"
    assert only(by_id[s.de["id"]]) == figures(both, sent=5, targeted=3, converted=2)
    assert by_id[s.de["id"]]["conversion_rate"] == 2 / 3
    assert [st["followups_sent"] for st in by_id[s.de["id"]]["steps"]] == [3, 2, 0]
    assert [st["converted_leads"] for st in by_id[s.de["id"]]["steps"]] == [1, 1, 0]
    assert by_id[s.en["id"]]["name"] == "Cart recovery EN"
    assert only(by_id[s.en["id"]]) == figures({}, sent=1, targeted=1, converted=0)
    assert by_id[s.en["id"]]["conversion_rate"] == 0.0

    # The counters agree with what really went out.
    sent = await count(db, Message, status="sent")
    assert sent == body["overall"]["followups_sent"] == 6


async def test_value_converted_with_rates(client, account, clock, dispatcher, smtp_sink):
    s = await scenario(client, account, clock, dispatcher, smtp_sink)
    body = await get_json(client, account, "/v1/stats", rates="USD:0.9")
    # The amounts per currency stay as they are; the conversion is extra.
    assert body["overall"]["value"] == {"EUR": "49.00", "USD": "30.00"}
    assert body["overall"]["value_converted"] == {"currency": "EUR", "amount": "76.00"}
    assert [st["value_converted"] for st in body["steps"]] == [
        {"currency": "EUR", "amount": "27.00"},
        {"currency": "EUR", "amount": "49.00"},
        {"currency": "EUR", "amount": "0.00"},
    ]
    by_id = {c["campaign_id"]: c for c in body["campaigns"]}
    assert by_id[s.de["id"]]["value_converted"] == {"currency": "EUR", "amount": "76.00"}
    assert by_id[s.en["id"]]["value_converted"] == {"currency": "EUR", "amount": "0.00"}

    # A rate for a currency that is not there is fine; a missing one is not.
    response = await client.get("/v1/stats", params={"rates": "GBP:1.2"}, headers=auth(account))
    assert_problem(response, 422, field="rates")
    for bad in ("USD", "USD:abc", "USD:0", "USD:-1", "XX1:2"):
        response = await client.get("/v1/stats", params={"rates": bad}, headers=auth(account))
        assert_problem(response, 422, field="rates")

    # Converted into the account's default currency, whatever it is now.
    await put_settings(client, account, default_currency="USD")
    body = await get_json(client, account, "/v1/stats", rates="EUR:1.1")
    assert body["overall"]["value_converted"] == {"currency": "USD", "amount": "83.90"}
    assert body["overall"]["value"] == {"EUR": "49.00", "USD": "30.00"}
    response = await client.get("/v1/stats", params={"rates": "USD:0.9"}, headers=auth(account))
    assert_problem(response, 422, field="rates")  # no rate for EUR
    # Without rates there is no conversion at all.
    assert (await get_json(client, account, "/v1/stats"))["overall"]["value_converted"] is None


async def test_series_by_hour_and_day(client, account, clock, dispatcher, smtp_sink):
    await scenario(client, account, clock, dispatcher, smtp_sink)
    body = await get_json(
        client,
        account,
        "/v1/stats",
        granularity="hour",
        **{"from": "2026-01-15T00:00:00Z", "to": "2026-01-16T00:00:00Z"},
    )
    assert body["granularity"] == "hour"
    series = body["series"]
    assert len(series) == 24
    assert [p["start"] for p in series[11:15]] == [
        "2026-01-15T11:00:00Z",
        "2026-01-15T12:00:00Z",
        "2026-01-15T13:00:00Z",
        "2026-01-15T14:00:00Z",
    ]
    # Step 1 went out at 12:10 and L3 bought at 12:30; step 2 at 13:10 and L1 bought at 13:30.
    assert series[12] | {"start": None} == {
        "start": None,
        "followups_sent": 4,
        "targeted_leads": 4,
        "converted_leads": 1,
        "value": {"USD": "30.00"},
    }
    assert series[13] | {"start": None} == {
        "start": None,
        "followups_sent": 2,
        "targeted_leads": 0,
        "converted_leads": 1,
        "value": {"EUR": "49.00"},
    }
    empty = {"followups_sent": 0, "targeted_leads": 0, "converted_leads": 0, "value": {}}
    for index, point in enumerate(series):
        if index not in (12, 13):
            assert point | {"start": None} == {"start": None, **empty}, point

    body = await get_json(
        client,
        account,
        "/v1/stats",
        granularity="day",
        **{"from": "2026-01-14T00:00:00Z", "to": "2026-01-17T00:00:00Z"},
    )
    assert [p["start"] for p in body["series"]] == [
        "2026-01-14T00:00:00Z",
        "2026-01-15T00:00:00Z",
        "2026-01-16T00:00:00Z",
    ]
    assert body["series"][1] == {
        "start": "2026-01-15T00:00:00Z",
        "followups_sent": 6,
        "targeted_leads": 4,
        "converted_leads": 2,
        "value": {"EUR": "49.00", "USD": "30.00"},
    }
    assert body["series"][0] | {"start": None} == {"start": None, **empty}
    assert body["series"][2] | {"start": None} == {"start": None, **empty}

    # The defaults: per day, the 30 days up to the end of the current hour (13:30 → 14:00).
    body = await get_json(client, account, "/v1/stats")
    assert body["granularity"] == "day"
    assert body["to"] == "2026-01-15T14:00:00Z"
    assert body["from"] == "2025-12-16T14:00:00Z"
    assert len(body["series"]) == 31
    assert body["series"][0]["start"] == "2025-12-16T00:00:00Z"
    assert body["series"][-1]["start"] == "2026-01-15T00:00:00Z"
    assert body["series"][-1]["followups_sent"] == 6
    assert sum(p["followups_sent"] for p in body["series"]) == 6


async def test_from_to_windows(client, account, clock, dispatcher, smtp_sink):
    s = await scenario(client, account, clock, dispatcher, smtp_sink)

    async def window(start: str, end: str, **params: Any) -> dict[str, Any]:
        return await get_json(client, account, "/v1/stats", **{"from": start, "to": end}, **params)

    # A window without any send or purchase shows zeros.
    later = await window("2026-01-16T00:00:00Z", "2026-01-17T00:00:00Z")
    assert later["overall"] == ZERO
    assert later["campaigns"] == []
    assert [only(st) for st in later["steps"]] == [ZERO, ZERO, ZERO]
    earlier = await window("2026-01-14T00:00:00Z", "2026-01-15T12:00:00Z")
    assert earlier["overall"] == ZERO

    # 12:00-13:00 (given with an offset): step 1 and the USD purchase only.
    first = await window("2026-01-15T13:00:00+01:00", "2026-01-15T14:00:00+01:00")
    assert first["overall"] == figures({"USD": "30.00"}, sent=4, targeted=4, converted=1)
    # 13:00-14:00: step 2 and the EUR purchase, but no newly targeted lead.
    second = await window("2026-01-15T13:00:00Z", "2026-01-15T14:00:00Z")
    assert second["overall"] == figures({"EUR": "49.00"}, sent=2, targeted=0, converted=1)
    assert [c["campaign_id"] for c in second["campaigns"]] == [s.de["id"]]
    # `from` is rounded down to the hour.
    rounded = await window("2026-01-15T13:59:00Z", "2026-01-15T14:00:00Z")
    assert rounded["overall"] == second["overall"]
    assert rounded["from"] == "2026-01-15T13:59:00Z"


async def test_campaign_filter_and_other_accounts(
    client, account, other_account, clock, dispatcher, smtp_sink
):
    s = await scenario(client, account, clock, dispatcher, smtp_sink)
    de = await get_json(client, account, "/v1/stats", campaign_id=s.de["id"])
    assert de["overall"] == figures({"EUR": "49.00", "USD": "30.00"}, 5, 3, 2)
    assert [c["campaign_id"] for c in de["campaigns"]] == [s.de["id"]]
    assert sum(p["followups_sent"] for p in de["series"]) == 5
    en = await get_json(client, account, "/v1/stats", campaign_id=s.en["id"])
    assert en["overall"] == figures({}, sent=1, targeted=1, converted=0)
    assert [st["followups_sent"] for st in en["steps"]] == [1, 0, 0]

    # Another account sees none of it, and cannot name the campaign.
    theirs = await get_json(client, other_account, "/v1/stats")
    assert theirs["overall"] == ZERO and theirs["campaigns"] == []
    assert all(p["followups_sent"] == 0 for p in theirs["series"])
    for path, params in (
        ("/v1/stats", {"campaign_id": s.de["id"]}),
        (f"/v1/campaigns/{s.de['id']}/stats", {}),
    ):
        response = await client.get(path, params=params, headers=auth(other_account))
        assert_problem(response, 404)
    response = await client.get(
        "/v1/stats", params={"campaign_id": "cmp_nope"}, headers=auth(account)
    )
    assert_problem(response, 404)
    assert (await client.get("/v1/stats")).status_code == 401


async def test_invalid_parameters(client, account):
    async def problem(field: str, **params: str) -> None:
        response = await client.get("/v1/stats", params=params, headers=auth(account))
        assert_problem(response, 422, field=field)

    await problem("granularity", granularity="week")
    await problem("from", **{"from": "2026-01-15T12:00:00Z", "to": "2026-01-15T11:00:00Z"})
    await problem("from", **{"from": "2026-01-15T12:00:00Z", "to": "2026-01-15T12:00:00Z"})
    await problem("from", **{"from": "2026-01-15T12:00:00"})
    await problem("to", to="2026-01-15T12:00:00")
    await problem("from", **{"from": "yesterday"})
    year = {"from": "2025-01-01T00:00:00Z", "to": "2026-01-15T00:00:00Z"}
    await problem("granularity", granularity="hour", **year)
    # The same year per day is fine, and so are 30 days per hour.
    assert (await client.get("/v1/stats", params=year, headers=auth(account))).status_code == 200
    month = {"from": "2025-12-16T00:00:00Z", "to": "2026-01-15T00:00:00Z", "granularity": "hour"}
    response = await client.get("/v1/stats", params=month, headers=auth(account))
    assert response.status_code == 200, response.text
    assert len(response.json()["series"]) == 30 * 24

    # The campaign route validates the same way.
    await no_min_delays(client, account)
    campaign = await create_campaign(
        client, account, name="Cart recovery", status="inactive", steps=TWO_STEPS
    )
    path = f"/v1/campaigns/{campaign['id']}/stats"
    for field, params in (
        ("granularity", {"granularity": "week"}),
        ("from", {"from": "2026-01-15T12:00:00"}),
        ("granularity", {"granularity": "hour", **year}),
        ("rates", {"rates": "nonsense"}),
    ):
        response = await client.get(path, params=params, headers=auth(account))
        assert_problem(response, 422, field=field)


async def test_campaign_stats_per_variant_and_step(client, account, clock, dispatcher, db):
    await no_min_delays(client, account, default_currency="EUR")
    campaign, ids = await create_ab_campaign(client, account, None, steps=TWO_STEPS)
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 1})
    assert (await dispatcher.run_once()).sent == 3
    clock.advance(minutes=20)
    await purchase(client, account, clock, leads["B"][0], amount="20.00", currency="EUR")
    clock.set(NOW + dt.timedelta(hours=1))
    assert (await dispatcher.run_once()).sent == 2  # step 2 for A's two leads
    clock.advance(minutes=20)
    await purchase(client, account, clock, leads["A"][0], amount="10.00", currency="USD")

    body = await get_json(client, account, f"/v1/campaigns/{campaign['id']}/stats")
    assert body["campaign_id"] == campaign["id"] and body["name"] == "Cart recovery A/B"
    assert body["overall"] == figures({"EUR": "20.00", "USD": "10.00"}, 5, 3, 2)
    assert [st["followups_sent"] for st in body["steps"]] == [3, 2, 0]
    variants = {v["name"]: v for v in body["variants"]}
    assert {v["variant_id"] for v in body["variants"]} == set(ids.values())
    a, b = variants["A"], variants["B"]
    assert a["variant_id"] == ids["A"]
    assert only(a) == figures({"USD": "10.00"}, sent=4, targeted=2, converted=1)
    assert [only(st, ("step", *ZERO)) for st in a["steps"]] == [
        {"step": 1, **figures({}, sent=2, targeted=2, converted=0)},
        {"step": 2, **figures({"USD": "10.00"}, sent=2, targeted=2, converted=1)},
        {"step": 3, **ZERO},
    ]
    assert only(b) == figures({"EUR": "20.00"}, sent=1, targeted=1, converted=1)
    assert [only(st, ("step", *ZERO)) for st in b["steps"]] == [
        {"step": 1, **figures({"EUR": "20.00"}, sent=1, targeted=1, converted=1)},
        {"step": 2, **ZERO},
        {"step": 3, **ZERO},
    ]
    assert sum(p["followups_sent"] for p in body["series"]) == 5

    converted = await get_json(
        client, account, f"/v1/campaigns/{campaign['id']}/stats", rates="USD:0.9"
    )
    by_name = {v["name"]: v for v in converted["variants"]}
    assert by_name["A"]["value_converted"] == {"currency": "EUR", "amount": "9.00"}
    assert by_name["B"]["value_converted"] == {"currency": "EUR", "amount": "20.00"}
    assert converted["overall"]["value_converted"] == {"currency": "EUR", "amount": "29.00"}

    # A window before anything happened: every variant listed, with zeros.
    quiet = await get_json(
        client,
        account,
        f"/v1/campaigns/{campaign['id']}/stats",
        **{"from": "2026-01-10T00:00:00Z", "to": "2026-01-11T00:00:00Z"},
    )
    assert sorted(v["name"] for v in quiet["variants"]) == ["A", "B"]
    assert all(only(v) == ZERO for v in quiet["variants"])
