"""Leads that lack what a template uses: no name, no products, no amount, no recovery link.
They are followed up like any other, and nothing prints as "None"; a custom template that
could only fail for them is refused when it is saved, naming the line."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.api import assert_problem, auth
from tests.support.campaigns import campaign_body, custom_step, variant
from tests.support.events import event_body, post_event

SPARSE = {
    "customer": {"email": "anon@example.com"},
    "products": [],
    "amount": None,
    "currency": None,
    "recovery_url": None,
}


def _body(sink_message) -> str:
    parts = [p.get_content() for p in sink_message.walk() if p.get_content_maintype() == "text"]
    return "\n".join(parts)


@pytest.mark.parametrize(
    "step",
    [
        {"delay": "PT0S", "template": "abandoned_checkout/1"},
        custom_step(
            delay="PT0S",
            subject="{{ first_name }}, still thinking?",
            html='<p>Hi {{ first_name }} {{ last_name }}</p><a href="{{ recovery_url }}">'
            "{{ amount }}</a> {{ discount_code }}",
            text="Hi {{ first_name }} {{ amount }} {{ recovery_url }}",
        ),
    ],
    ids=["predefined", "custom"],
)
async def test_a_lead_without_details_gets_no_none(
    client, account, clock, dispatcher, smtp_sink, step
):
    await client.put(
        "/v1/settings", json={"min_delays": {"abandoned_checkout": "PT0S"}}, headers=auth(account)
    )
    body = campaign_body(status="active", variants=[variant(steps=[step])])
    created = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert created.status_code == 201, created.text
    event = event_body(occurred_at=clock.now().isoformat(), **SPARSE)
    event = {k: v for k, v in event.items() if v is not None}
    response = await post_event(client, account, event, clock=clock)
    assert response.status_code == 200, response.text
    clock.advance(dt.timedelta(minutes=1))
    assert (await dispatcher.run_once()).sent == 1
    [message] = smtp_sink.messages
    assert "None" not in message["Subject"]
    assert "None" not in _body(message)


@pytest.mark.parametrize(
    ("part", "source", "line"),
    [
        ("html", "<p>Hello</p>\n<p>{{ products[0].name }} is waiting</p>", 2),
        ("text", "Total: {{ amount.upper() }}", 1),
        ("subject", "{{ first_name.title() }}, your cart", 1),
    ],
)
async def test_a_template_that_fails_for_a_sparse_lead_is_refused(
    client, account, part, source, line
):
    step = custom_step(**{part: source})
    body = campaign_body(variants=[variant(steps=[step])])
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    problem = assert_problem(response, 422)
    [error] = problem["errors"]
    assert error["field"].endswith(part), error
    assert f"line {line}" in error["message"] and "without a name" in error["message"], error
    listed = await client.get("/v1/campaigns", headers=auth(account))
    assert listed.json()["items"] == []
