"""Which campaign a captured lead joins and which variant it gets (backfills: test_backfill.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from leadflow.lifecycle.enrollment import choose_variant
from leadflow.models import Enrollment, Lead, Variant
from tests.campaigns.helpers import enrollment_of
from tests.support.api import auth
from tests.support.campaigns import create_campaign, step, variant
from tests.support.database import count
from tests.support.events import capture


async def active(client, account, name: str, **overrides: Any) -> dict[str, Any]:
    return await create_campaign(client, account, name=name, status="active", **overrides)


async def campaign_of(db, lead_id: str) -> str | None:
    enrollment = await enrollment_of(db, lead_id)
    return enrollment.campaign_id if enrollment else None


async def test_matching_lead_is_enrolled_once_with_first_step_due(client, account, clock, db):
    campaign = await active(client, account, "Cart recovery DE")
    lead_id = await capture(client, account, clock, reference="chk_1")
    enrollment = await enrollment_of(db, lead_id)
    assert enrollment is not None
    assert enrollment.campaign_id == campaign["id"]
    assert enrollment.variant_id == campaign["variants"][0]["id"]
    assert enrollment.account_id == account["id"]
    assert enrollment.state == "active"
    assert enrollment.next_step == 1
    # Captured at 11:00 (occurred_at), first follow-up PT2H later.
    assert enrollment.next_due_at == dt.datetime(2026, 1, 15, 13, 0, tzinfo=dt.UTC)
    assert await count(db, Enrollment, lead_id=lead_id) == 1


async def test_first_step_never_comes_before_the_accounts_minimum(client, account, clock, db):
    # A campaign for all sources may start after PT1H, but trial leads wait at least P1D.
    await active(
        client, account, "All leads", source="all", variants=[variant("A", [step("PT1H")])]
    )
    lead_id = await capture(client, account, clock, reference="sub_1", type="trial.started")
    enrollment = await enrollment_of(db, lead_id)
    assert enrollment is not None
    assert enrollment.next_due_at == dt.datetime(2026, 1, 16, 11, 0, tzinfo=dt.UTC)


async def test_inactive_or_archived_campaigns_do_not_enroll(client, account, clock, db):
    await create_campaign(client, account, name="Cart recovery off")
    archived = await active(client, account, "Cart recovery gone")
    await client.delete(f"/v1/campaigns/{archived['id']}", headers=auth(account))
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await enrollment_of(db, lead_id) is None
    assert await count(db, Enrollment) == 0


async def test_a_lead_joins_at_most_one_campaign(client, account, clock, db):
    for i in range(3):
        await active(client, account, f"Cart recovery {i}")
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await count(db, Enrollment, lead_id=lead_id) == 1
    assert await count(db, Enrollment) == 1


async def test_highest_priority_wins_over_specificity(client, account, clock, db):
    await active(client, account, "Specific DE", languages=["de"], countries=["DE"])
    broad = await active(client, account, "Everything", source="all", priority=5)
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, lead_id) == broad["id"]


async def test_same_priority_most_specific_wins(client, account, clock, db):
    await active(client, account, "Everything", source="all")
    await active(client, account, "German", languages=["de"])
    most = await active(
        client, account, "German carts for sku-1", languages=["de"], products=["sku-1"]
    )
    await active(client, account, "Carts", priority=-1, countries=["DE"], products=["sku-1"])
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, lead_id) == most["id"]


async def test_equal_campaigns_the_oldest_wins(client, account, clock, db):
    first = await active(client, account, "Carts one")
    clock.advance(seconds=1)
    await active(client, account, "Carts two")
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, lead_id) == first["id"]


async def test_source_filter(client, account, clock, db):
    trial = await active(
        client,
        account,
        "Trial nurture",
        source="trial",
        variants=[variant("A", [step("P1D", "trial/1")])],
    )
    cart = await capture(client, account, clock, reference="chk_1")
    sub = await capture(client, account, clock, reference="sub_1", type="trial.started")
    assert await enrollment_of(db, cart) is None
    assert await campaign_of(db, sub) == trial["id"]


async def test_products_filter(client, account, clock, db):
    campaign = await active(client, account, "Pro plan carts", products=["sku-2", "sku-1"])
    await active(client, account, "Never matches", products=["sku-9"], priority=10)
    pro = await capture(client, account, clock, reference="chk_1")  # sku-1
    other = await capture(
        client,
        account,
        clock,
        reference="chk_2",
        products=[{"id": "sku-3", "name": "Basic", "quantity": 1, "unit_price": "9.00"}],
    )
    mixed = await capture(
        client,
        account,
        clock,
        reference="chk_3",
        products=[
            {"id": "sku-3", "name": "Basic", "quantity": 1, "unit_price": "9.00"},
            {"id": "sku-2", "name": "Team", "quantity": 1, "unit_price": "40.00"},
        ],
    )
    none = await capture(client, account, clock, reference="chk_4", products=[])
    assert await campaign_of(db, pro) == campaign["id"]
    assert await enrollment_of(db, other) is None
    assert await campaign_of(db, mixed) == campaign["id"]
    assert await enrollment_of(db, none) is None


@pytest.mark.parametrize(
    ("campaign_languages", "lead_language", "enrolled"),
    [
        (["de"], "de", True),
        (["de"], "de-AT", True),
        (["de"], "DE_ch", True),
        (["de"], "fr", False),
        (["pt-BR"], "pt", False),
        (["pt-BR"], "pt-BR", True),
        (["pt-BR"], "pt-PT", False),
        (["pt", "de"], "pt-PT", True),
        (["de"], None, False),
        ([], None, True),
        ([], "ja", True),
    ],
)
async def test_languages_filter(
    client, account, clock, db, campaign_languages, lead_language, enrolled
):
    campaign = await active(client, account, "Language campaign", languages=campaign_languages)
    lead_id = await capture(
        client, account, clock, reference="chk_1", customer={"language": lead_language}
    )
    assert await campaign_of(db, lead_id) == (campaign["id"] if enrolled else None)


async def test_countries_filter(client, account, clock, db):
    dach = await active(client, account, "DACH carts", countries=["AT", "ch", "DE"])
    await active(client, account, "France carts", countries=["FR"], priority=3)
    german = await capture(client, account, clock, reference="chk_1", customer={"country": "DE"})
    swiss = await capture(client, account, clock, reference="chk_2", customer={"country": "CH"})
    spanish = await capture(client, account, clock, reference="chk_3", customer={"country": "ES"})
    unknown = await capture(client, account, clock, reference="chk_4", customer={"country": None})
    assert await campaign_of(db, german) == dach["id"]
    assert await campaign_of(db, swiss) == dach["id"]
    assert await enrollment_of(db, spanish) is None
    assert await enrollment_of(db, unknown) is None


@pytest.mark.parametrize(
    ("schedule", "enrolled"),
    [
        ({"starts_at": "2026-01-16T00:00:00Z"}, False),
        ({"ends_at": "2026-01-15T11:59:59Z"}, False),
        ({"ends_at": "2026-01-15T12:00:00Z"}, False),
        ({"starts_at": "2026-01-15T12:00:00Z"}, True),
        ({"starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"}, True),
    ],
)
async def test_schedule_limits_enrollment(client, account, clock, db, schedule, enrolled):
    campaign = await active(client, account, "Scheduled carts", **schedule)
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, lead_id) == (campaign["id"] if enrolled else None)


async def test_a_scheduled_campaign_enrolls_once_it_starts(client, account, clock, db):
    campaign = await active(client, account, "Starts tomorrow", starts_at="2026-01-16T00:00:00Z")
    early = await capture(client, account, clock, reference="chk_1")
    clock.set(dt.datetime(2026, 1, 16, 9, 0, tzinfo=dt.UTC))
    late = await capture(
        client, account, clock, reference="chk_2", occurred_at="2026-01-16T08:30:00Z"
    )
    assert await enrollment_of(db, early) is None
    assert await campaign_of(db, late) == campaign["id"]


async def test_a_campaign_without_live_variants_is_skipped(client, account, clock, db):
    fallback = await active(client, account, "Fallback carts")
    emptied = await active(
        client, account, "Emptied carts", priority=9, variants=[variant("A"), variant("B")]
    )
    for v in emptied["variants"]:
        path = f"/v1/campaigns/{emptied['id']}/variants/{v['id']}"
        if v is emptied["variants"][-1]:
            off = await client.patch(
                f"/v1/campaigns/{emptied['id']}", json={"status": "inactive"}, headers=auth(account)
            )
            assert off.status_code == 200
        assert (await client.delete(path, headers=auth(account))).status_code == 204
    lead_id = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, lead_id) == fallback["id"]


def test_choose_variant_is_deterministic_and_weighted():
    a = Variant(id="var_a", name="A", weight=3)
    b = Variant(id="var_b", name="B", weight=1)
    ids = [f"lead_{i:05d}" for i in range(400)]
    first = [choose_variant(lead_id, [a, b]).id for lead_id in ids]
    again = [choose_variant(lead_id, [a, b]).id for lead_id in reversed(ids)]
    assert first == list(reversed(again))
    split = Counter(first)
    assert split["var_a"] + split["var_b"] == 400
    assert 260 <= split["var_a"] <= 340, split  # expected 300, sd ~8.7
    # Equal weights: roughly half each; a single variant takes everything.
    a.weight = 1
    halves = Counter(choose_variant(lead_id, [a, b]).id for lead_id in ids)
    assert 160 <= halves["var_a"] <= 240, halves
    assert {choose_variant(lead_id, [b]).id for lead_id in ids} == {"var_b"}


async def test_enrollment_uses_the_deterministic_split(client, account, clock, db):
    campaign = await active(
        client, account, "Cart A/B test", variants=[variant("A", weight=3), variant("B", weight=1)]
    )
    lead_ids = [await capture(client, account, clock, reference=f"chk_{i}") for i in range(16)]
    async with db.session() as session:
        variants = list(
            (
                await session.execute(
                    select(Variant)
                    .where(Variant.campaign_id == campaign["id"])
                    .order_by(Variant.created_at, Variant.id)
                )
            ).scalars()
        )
    assert [v.name for v in variants] == ["A", "B"]
    for lead_id in lead_ids:
        enrollment = await enrollment_of(db, lead_id)
        assert enrollment is not None
        assert enrollment.variant_id == choose_variant(lead_id, variants).id


async def test_other_accounts_leads_never_join_a_campaign(
    client, account, other_account, clock, db
):
    await active(client, account, "Carts", source="all")
    theirs = await capture(client, other_account, clock, reference="chk_1")
    assert await enrollment_of(db, theirs) is None
    async with db.session() as session:
        lead = await session.get(Lead, theirs)
        assert lead is not None and lead.account_id == other_account["id"]
