"""A purchase with the same reference converts the lead only around the lead's own time."""

from __future__ import annotations

from tests.support.events import clock_iso, event_body, post_event


async def test_old_payment_of_the_same_subscription_does_not_convert_a_renewal(
    client, account, clock
):
    paid = event_body(type="order.completed", reference="sub_1", occurred_at=clock_iso(clock))
    assert (await post_event(client, account, paid, clock=clock)).status_code == 200
    clock.advance(days=30)
    renewal = event_body(type="renewal.due", reference="sub_1", occurred_at=clock_iso(clock))
    response = await post_event(client, account, renewal, clock=clock)
    assert response.json()["lead_status"] == "open"

    clock.advance(days=2)
    paid_again = event_body(type="order.completed", reference="sub_1", occurred_at=clock_iso(clock))
    result = (await post_event(client, account, paid_again, clock=clock)).json()
    assert result["converted_lead_ids"] == [response.json()["lead_id"]]


async def test_renewal_lead_is_not_converted_by_a_payment_long_before_it(client, account, clock):
    renewal = event_body(type="renewal.due", reference="sub_2", occurred_at=clock_iso(clock))
    lead_id = (await post_event(client, account, renewal, clock=clock)).json()["lead_id"]
    # Delivered late but dated 20 days before the lead: a previous billing cycle.
    old = event_body(
        type="order.completed",
        reference="sub_2",
        occurred_at=clock_iso(clock, days=-20),
        customer={**event_body()["customer"], "email": "someone-else@example.com"},
    )
    result = (await post_event(client, account, old, clock=clock)).json()
    assert lead_id not in result["converted_lead_ids"]
