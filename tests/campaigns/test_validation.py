"""Every bad campaign input is a 422 problem naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.models import Campaign, Variant
from tests.support.api import assert_problem, auth
from tests.support.campaigns import (
    campaign_body,
    create_campaign,
    custom_step,
    get_campaign,
    step,
    variant,
)
from tests.support.database import count


def with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"variants": [variant("A", list(steps))]}


BROKEN_LINE_3 = "<p>Hello {{ first_name }}</p>\n<p>Your cart:</p>\n<p>{% for p in products %}</p>\n"

# (id, overrides of a valid body, field named in `errors`, text in that error's message)
CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("four-steps", with_steps(step(), step(), step(), step()), "variants[0].steps", "at most 3"),
    ("no-steps", with_steps(), "variants[0].steps", None),
    ("delay-below-minimum", with_steps(step("PT30M")), "variants[0].steps[0].delay", "PT1H"),
    ("delay-words", with_steps(step("2 hours")), "variants[0].steps[0].delay", None),
    ("delay-months", with_steps(step("P1M")), "variants[0].steps[0].delay", None),
    ("delay-years", with_steps(step("P1Y")), "variants[0].steps[0].delay", None),
    ("delay-empty", with_steps(step("")), "variants[0].steps[0].delay", None),
    ("delay-bare-P", with_steps(step("P")), "variants[0].steps[0].delay", None),
    ("delay-negative", with_steps(step("-PT2H")), "variants[0].steps[0].delay", None),
    ("delay-overflow", with_steps(step("P9999999999D")), "variants[0].steps[0].delay", None),
    ("delay-absurd", with_steps(step("P999999999D")), "variants[0].steps[0].delay", None),
    (
        "later-step-bad-delay",
        with_steps(step(), step("tomorrow", "abandoned_checkout/2")),
        "variants[0].steps[1].delay",
        None,
    ),
    (
        "unknown-template",
        with_steps(step(template="abandoned_checkout/4")),
        "variants[0].steps[0].template",
        "abandoned_checkout/4",
    ),
    (
        "nonsense-template",
        with_steps(step(template="welcome")),
        "variants[0].steps[0].template",
        None,
    ),
    (
        "template-and-custom",
        with_steps(step(subject="Hi", html="<p>Hi</p>", text="Hi")),
        "variants[0].steps[0]",
        "not both",
    ),
    (
        "template-and-subject",
        with_steps(step(subject="Hi {{ first_name }}")),
        "variants[0].steps[0]",
        None,
    ),
    (
        "custom-without-text",
        with_steps({"delay": "PT2H", "subject": "Hi", "html": "<p>Hi</p>"}),
        "variants[0].steps[0]",
        "text",
    ),
    ("neither-template-nor-custom", with_steps({"delay": "PT2H"}), "variants[0].steps[0]", None),
    ("step-unknown-field", with_steps(step(body="x")), "variants[0].steps[0].body", None),
    ("language-invalid", {"languages": ["english!"]}, "languages", "english!"),
    ("language-one-bad", {"languages": ["de", "x1"]}, "languages", None),
    ("country-unassigned", {"countries": ["XX"]}, "countries", "XX"),
    ("country-name", {"countries": ["Germany"]}, "countries", "Germany"),
    ("product-blank", {"products": ["  "]}, "products", None),
    (
        "ends-before-starts",
        {"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"},
        "ends_at",
        None,
    ),
    (
        "ends-equal-starts",
        {"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-03-01T01:00:00+01:00"},
        "ends_at",
        None,
    ),
    ("starts-naive", {"starts_at": "2026-03-01T00:00:00"}, "starts_at", None),
    ("window-25h", {"send_window": {"start": "25:00", "end": "20:00"}}, "send_window.start", None),
    (
        "window-minutes",
        {"send_window": {"start": "09:00", "end": "20:60"}},
        "send_window.end",
        None,
    ),
    ("window-equal", {"send_window": {"start": "09:00", "end": "09:00"}}, "send_window", "differ"),
    ("window-missing-end", {"send_window": {"start": "09:00"}}, "send_window.end", None),
    ("unknown-top-level-field", {"colour": "red"}, "colour", None),
    ("name-empty", {"name": ""}, "name", None),
    ("name-blank", {"name": "   "}, "name", None),
    ("name-too-long", {"name": "x" * 201}, "name", None),
    ("source-unknown", {"source": "newsletter"}, "source", None),
    ("status-unknown", {"status": "paused"}, "status", None),
    ("active-without-variants", {"status": "active", "variants": []}, "status", None),
    ("priority-too-high", {"priority": 1001}, "priority", None),
    ("weight-zero", {"variants": [variant("A", weight=0)]}, "variants[0].weight", None),
    ("variant-names-repeat", {"variants": [variant("A"), variant("A")]}, "variants", "unique"),
    (
        "second-variant-bad-step",
        {"variants": [variant("A"), variant("B", [step(), step(template="trial/7")])]},
        "variants[1].steps[1].template",
        None,
    ),
    (
        "custom-syntax-error-line-1",
        with_steps(custom_step(html="{% if %}")),
        "variants[0].steps[0].html",
        "line 1",
    ),
    (
        "custom-syntax-error-line-3",
        with_steps(custom_step(html=BROKEN_LINE_3)),
        "variants[0].steps[0].html",
        "line 3",
    ),
    (
        "custom-unclosed-variable",
        with_steps(custom_step(text="Hi\n\n{{ first_name ")),
        "variants[0].steps[0].text",
        "line 3",
    ),
    (
        "custom-unknown-variable",
        with_steps(custom_step(text="Your password: {{ password }}")),
        "variants[0].steps[0].text",
        "password",
    ),
    (
        "custom-unknown-variable-subject",
        with_steps(custom_step(subject="{{ order_number }} is waiting")),
        "variants[0].steps[0].subject",
        "order_number",
    ),
    (
        "subject-crlf",
        with_steps(custom_step(subject="Hi\r\nBcc: victim@example.com")),
        "variants[0].steps[0].subject",
        None,
    ),
    (
        "subject-lf",
        with_steps(custom_step(subject="Hi\nthere")),
        "variants[0].steps[0].subject",
        None,
    ),
    (
        "subject-cr",
        with_steps(custom_step(subject="Hi\rthere")),
        "variants[0].steps[0].subject",
        None,
    ),
    (
        "custom-render-error",
        with_steps(custom_step(html="{{ products[5].name }}")),
        "variants[0].steps[0].html",
        None,
    ),
    (
        "discount-code-too-long",
        with_steps(step(discount_code="X" * 65)),
        "variants[0].steps[0].discount_code",
        None,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_create_is_422_and_writes_nothing(client, account, db, overrides, field, message):
    response = await client.post(
        "/v1/campaigns", json=campaign_body(**overrides), headers=auth(account)
    )
    body = assert_problem(
        response, 422, field=field, code="validation_error", message_contains=message, typed=True
    )
    assert all(set(e) == {"field", "message"} and e["message"] for e in body["errors"])
    assert await count(db, Campaign) == 0
    assert await count(db, Variant) == 0


async def test_the_valid_base_body_is_accepted(client, account, db):
    """The cases above differ from this body only by the named problem."""
    assert (await create_campaign(client, account))["status"] == "inactive"
    assert await count(db, Campaign) == 1


async def test_several_problems_are_reported_together(client, account, db):
    body = campaign_body(
        variants=[
            variant("A", [step("PT1M", "abandoned_checkout/5"), custom_step(html="{% if %}")])
        ]
    )
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    problem = assert_problem(response, 422, typed=True)
    fields = {e["field"] for e in problem["errors"]}
    assert {
        "variants[0].steps[0].delay",
        "variants[0].steps[0].template",
        "variants[0].steps[1].html",
    } <= fields
    assert await count(db, Campaign) == 0


async def test_malformed_json_is_422(client, account, db):
    response = await client.post(
        "/v1/campaigns",
        content=b'{"name": "Cart recovery DE",',
        headers={**auth(account), "content-type": "application/json"},
    )
    assert_problem(response, 422, typed=True)
    assert await count(db, Campaign) == 0


async def test_account_minimum_delay_can_be_lowered(client, account, db):
    body = campaign_body(variants=[variant("A", [step("PT30M")])])
    refused = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert_problem(refused, 422, field="variants[0].steps[0].delay", typed=True)
    assert await count(db, Campaign) == 0

    settings = await client.put(
        "/v1/settings", json={"min_delays": {"abandoned_checkout": "PT0S"}}, headers=auth(account)
    )
    assert settings.status_code == 200, settings.text
    assert settings.json()["min_delays"]["abandoned_checkout"] == "PT0S"

    accepted = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["variants"][0]["steps"][0]["delay"] == "PT30M"
    # Only abandoned checkouts got the lower minimum: a trial campaign still needs P1D.
    trial = campaign_body(
        "Trial nurture", source="trial", variants=[variant("A", [step("PT30M", "trial/1")])]
    )
    still_refused = await client.post("/v1/campaigns", json=trial, headers=auth(account))
    assert_problem(
        still_refused, 422, field="variants[0].steps[0].delay", message_contains="P1D", typed=True
    )
    assert await count(db, Campaign) == 1


async def test_minimum_delay_of_source_all_is_the_lowest_of_all_sources(client, account, db):
    body = campaign_body(source="all", variants=[variant("A", [step("PT59M")])])
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert_problem(response, 422, field="variants[0].steps[0].delay", typed=True)
    exactly = campaign_body(source="all", variants=[variant("A", [step("PT1H")])])
    assert (
        await client.post("/v1/campaigns", json=exactly, headers=auth(account))
    ).status_code == 201


async def test_minimum_applies_to_step_one_only(client, account):
    created = await create_campaign(
        client,
        account,
        variants=[variant("A", [step("PT1H"), step("PT5M", "abandoned_checkout/2")])],
    )
    assert [s["delay"] for s in created["variants"][0]["steps"]] == ["PT1H", "PT5M"]


PATCH_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("ends-before-existing-start", {"ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    (
        "both-reversed",
        {"starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"},
        "ends_at",
    ),
    ("language-invalid", {"languages": ["english!"]}, "languages"),
    ("country-invalid", {"countries": ["XX"]}, "countries"),
    ("product-blank", {"products": [""]}, "products"),
    ("window-25h", {"send_window": {"start": "25:00", "end": "06:00"}}, "send_window.start"),
    ("window-equal", {"send_window": {"start": "06:00", "end": "06:00"}}, "send_window"),
    ("unknown-field", {"variants": []}, "variants"),
    ("name-null", {"name": None}, "name"),
    ("name-blank", {"name": "  "}, "name"),
    ("status-null", {"status": None}, "status"),
    ("priority-null", {"priority": None}, "priority"),
    ("languages-null", {"languages": None}, "languages"),
    ("source-raises-minimum", {"source": "trial"}, "source"),
    ("priority-too-low", {"priority": -1001}, "priority"),
]


@pytest.mark.parametrize(
    ("patch", "field"), [c[1:] for c in PATCH_CASES], ids=[c[0] for c in PATCH_CASES]
)
async def test_bad_patch_is_422_and_changes_nothing(client, account, db, patch, field):
    created = await create_campaign(
        client,
        account,
        languages=["de"],
        countries=["DE"],
        products=["sku-1"],
        starts_at="2026-02-01T00:00:00Z",
    )
    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={"description": "should not be saved", **patch},
        headers=auth(account),
    )
    assert_problem(response, 422, field=field, typed=True)
    assert await get_campaign(client, account, created["id"]) == created
    assert await count(db, Campaign, description="should not be saved") == 0
