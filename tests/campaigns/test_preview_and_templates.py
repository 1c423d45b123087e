"""Previewing follow-ups for the sample lead or a real one; the predefined template list."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.templates.catalog import TEMPLATE_VARIABLES, get_template
from tests.support.api import assert_problem, auth
from tests.support.campaigns import create_campaign, custom_step, step, variant
from tests.support.events import capture

LANGUAGES = {"en", "de", "fr", "es", "it", "pt", "nl"}


async def preview(client, account, campaign_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/preview", json=body, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def campaign(client, account) -> dict[str, Any]:
    """Variant A: three predefined steps; variant B: one custom step."""
    return await create_campaign(
        client,
        account,
        variants=[
            variant(
                "A",
                [
                    step("PT2H", "abandoned_checkout/1"),
                    step("P1D", "abandoned_checkout/2"),
                    step("P2D", "abandoned_checkout/3", discount_code="COMEBACK10"),
                ],
            ),
            variant(
                "B",
                [
                    custom_step(
                        subject="{{ first_name }}, {{ merchant_name }} kept your cart",
                        html="<p>Total {{ amount }}</p><a href='{{ recovery_url }}'>Go</a>",
                        text="Total {{ amount }}: {{ recovery_url }}",
                    )
                ],
            ),
        ],
    )


async def test_preview_with_the_sample_lead(client, account, campaign):
    shown = await preview(client, account, campaign["id"])
    assert shown["to"] == "jane.doe@example.com"
    assert shown["language"] == "en"
    assert shown["subject"]
    assert "\n" not in shown["subject"]
    assert "Jane" in shown["html"]
    assert "Jane" in shown["text"]
    assert "Pro plan" in shown["html"]
    assert "<html" in shown["html"]
    assert "<" not in shown["text"]
    # Default: variant A, step 1; asking for them explicitly gives the same.
    explicit = await preview(
        client, account, campaign["id"], variant_id=campaign["variants"][0]["id"], step=1
    )
    assert explicit == shown


async def test_preview_renders_the_chosen_variant_and_step(client, account, campaign):
    a_id, b_id = (v["id"] for v in campaign["variants"])
    step1 = await preview(client, account, campaign["id"], variant_id=a_id, step=1)
    step3 = await preview(client, account, campaign["id"], variant_id=a_id, step=3)
    assert step3["subject"] != step1["subject"]
    assert "COMEBACK10" in step3["text"]
    assert "COMEBACK10" in step3["html"]
    assert "COMEBACK10" not in step1["text"]
    custom = await preview(client, account, campaign["id"], variant_id=b_id)
    assert custom["subject"] == "Jane, Acme Shop kept your cart"
    assert custom["text"] == "Total €49.00: https://shop.example.com/checkout/sample"


async def test_preview_language_choice_for_predefined_templates(client, account, campaign):
    subjects = {}
    for language in ("en", "de", "fr", "pt", "pt-BR", "ja", "DE-at"):
        shown = await preview(client, account, campaign["id"], language=language)
        subjects[language] = (shown["language"], shown["subject"])
    assert subjects["de"][0] == "de"
    assert subjects["fr"][0] == "fr"
    assert subjects["de"][1] != subjects["fr"][1]
    assert subjects["de"][1] != subjects["en"][1]
    assert subjects["pt-BR"] == subjects["pt"] == ("pt", subjects["pt"][1])
    assert subjects["ja"] == subjects["en"] == ("en", subjects["en"][1])
    assert subjects["DE-at"] == subjects["de"]
    # The subject is the catalog's German one.
    assert (
        get_template("abandoned_checkout/1", "de").subject.split("{{")[0].strip()
        in (subjects["de"][1])
    )


async def test_preview_rejects_a_bad_language(client, account, campaign):
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview",
        json={"language": "english!"},
        headers=auth(account),
    )
    assert_problem(response, 422, field="language", typed=True)


async def test_preview_for_a_real_lead(client, account, clock, campaign):
    lead_id = await capture(
        client,
        account,
        clock,
        reference="chk_real",
        email="Jürgen.Meier@Example.com",
        customer={"first_name": "Jürgen", "language": "de"},
    )
    shown = await preview(client, account, campaign["id"], lead_id=lead_id)
    assert shown["to"] == "jürgen.meier@example.com"
    assert shown["language"] == "de"
    assert "Jürgen" in shown["html"]
    assert "49,00\xa0€" in shown["text"]  # money in the lead's language
    sample_de = await preview(client, account, campaign["id"], language="de")
    assert "Jürgen" not in sample_de["html"]
    assert "Jane" in sample_de["html"]
    # A real lead's own language wins over `language`.
    ignored = await preview(client, account, campaign["id"], lead_id=lead_id, language="fr")
    assert ignored == shown
    # The custom variant uses the real lead's data too.
    custom = await preview(
        client, account, campaign["id"], lead_id=lead_id, variant_id=campaign["variants"][1]["id"]
    )
    assert custom["subject"] == "Jürgen, Acme Shop kept your cart"
    assert custom["language"] == "de"
    assert "https://shop.example.com/recover/chk_1" in custom["text"]


async def test_preview_for_a_lead_in_an_unsupported_language_falls_back(
    client, account, clock, campaign
):
    lead_id = await capture(client, account, clock, reference="chk_ja", customer={"language": "ja"})
    shown = await preview(client, account, campaign["id"], lead_id=lead_id)
    english = await preview(client, account, campaign["id"], language="en")
    assert shown["language"] == "en"
    assert shown["subject"] == english["subject"]


@pytest.mark.parametrize("step_no", [0, 4, -1])
async def test_preview_step_outside_1_to_3_is_422(client, account, campaign, step_no):
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview", json={"step": step_no}, headers=auth(account)
    )
    assert_problem(response, 422, field="step", typed=True)


async def test_preview_step_beyond_the_variant_is_422(client, account, campaign):
    b_id = campaign["variants"][1]["id"]
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview",
        json={"variant_id": b_id, "step": 2},
        headers=auth(account),
    )
    assert_problem(response, 422, field="step", message_contains="1 step", typed=True)


async def test_preview_of_another_accounts_lead_is_404(
    client, account, other_account, clock, campaign
):
    foreign = await capture(client, other_account, clock, reference="chk_theirs")
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview", json={"lead_id": foreign}, headers=auth(account)
    )
    body = assert_problem(response, 404, typed=True)
    assert "Jane" not in response.text
    missing = await client.post(
        f"/v1/campaigns/{campaign['id']}/preview",
        json={"lead_id": "lead_missing"},
        headers=auth(account),
    )
    assert assert_problem(missing, 404, typed=True) == body


async def test_preview_unknown_or_removed_variant_is_404(client, account, campaign):
    b_id = campaign["variants"][1]["id"]
    path = f"/v1/campaigns/{campaign['id']}"
    assert (
        await client.delete(f"{path}/variants/{b_id}", headers=auth(account))
    ).status_code == 204
    for vid in (b_id, "var_missing"):
        response = await client.post(
            f"{path}/preview", json={"variant_id": vid}, headers=auth(account)
        )
        assert_problem(response, 404, typed=True)


async def test_preview_without_variants_is_409(client, account):
    created = await create_campaign(client, account, variants=[])
    response = await client.post(
        f"/v1/campaigns/{created['id']}/preview", json={}, headers=auth(account)
    )
    assert_problem(response, 409, code="no_variants", typed=True)


async def test_templates_list(client, account):
    response = await client.get("/v1/templates", headers=auth(account))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    items = page["items"]
    expected = [
        f"{source}/{n}"
        for source in ("abandoned_checkout", "unfinished_order", "trial", "renewal")
        for n in (1, 2, 3)
    ]
    assert len(items) == 12
    assert sorted(item["key"] for item in items) == sorted(expected)
    for item in items:
        source, n = item["key"].split("/")
        assert item["source_type"] == source
        assert item["step"] == int(n)
        assert set(item["languages"]) >= LANGUAGES
        assert item["variables"] == list(TEMPLATE_VARIABLES)
        assert {"first_name", "recovery_url", "unsubscribe_url", "discount_code"} <= set(
            item["variables"]
        )


async def test_every_listed_template_can_be_used_and_previewed(client, account):
    items = (await client.get("/v1/templates", headers=auth(account))).json()["items"]
    by_source: dict[str, list[str]] = {}
    for item in items:
        by_source.setdefault(item["source_type"], []).append(item["key"])
    for source, keys in by_source.items():
        created = await create_campaign(
            client,
            account,
            name=f"Every {source} template",
            source=source,
            variants=[variant("A", [step("P1D", key) for key in sorted(keys)])],
        )
        for n in (1, 2, 3):
            subjects = set()
            for language in sorted(LANGUAGES):
                shown = await preview(client, account, created["id"], step=n, language=language)
                assert shown["language"] == language
                assert shown["subject"] and shown["html"] and shown["text"]
                subjects.add(shown["subject"])
            assert len(subjects) == len(LANGUAGES), (source, n, subjects)
