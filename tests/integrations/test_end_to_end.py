"""Per platform: webhook -> lead -> follow-up email over real SMTP -> purchase webhook ->
lead converted, conversion credited to the step and variant, no further email."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from leadflow.integrations.shopify import abandon_due_checkouts
from leadflow.models.leads import Conversion
from tests.integrations.helpers import (
    PAYPRO_SECRET,
    PAYPRO_VALIDATION_KEY,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WC_SECRET,
    checkout_session,
    configure,
    paypro_ipn,
    post_paypro,
    post_shopify,
    post_stripe,
    post_wc,
    shopify_checkout,
    shopify_order,
    stripe_event,
    unix,
    wc_order,
)
from tests.support.api import auth
from tests.support.campaigns import create_campaign, step


async def _campaign(
    client: httpx.AsyncClient, account: dict[str, Any], source: str
) -> dict[str, Any]:
    steps = [step("PT1H", f"{source}/1"), step("P1D", f"{source}/2")]
    return await create_campaign(
        client, account, name=f"{source} recovery", source=source, status="active", steps=steps
    )


async def _flow(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    db: Any,
    clock: Any,
    dispatcher: Any,
    smtp_sink: Any,
    *,
    source: str,
    email: str,
    capture: Callable[[], Awaitable[str]],
    purchase: Callable[[], Awaitable[httpx.Response]],
    amount: str,
    currency: str,
) -> None:
    campaign = await _campaign(client, account, source)
    lead_id = await capture()
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=auth(account))).json()
    assert lead["source_type"] == source and lead["status"] == "open"

    assert (await dispatcher.run_once()).claimed == 0  # not due yet
    clock.advance(hours=1)
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    [message] = smtp_sink.messages
    assert message["To"] == email

    clock.advance(hours=3)
    response = await purchase()
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.completed"
    assert response.json()["converted_lead_ids"] == [lead_id]
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=auth(account))).json()
    assert lead["status"] == "converted"
    async with db.session() as s:
        conversion = (
            await s.execute(select(Conversion).where(Conversion.lead_id == lead_id))
        ).scalar_one()
    assert conversion.campaign_id == campaign["id"]
    assert conversion.variant_id == campaign["variants"][0]["id"]
    assert conversion.step == 1
    assert (conversion.amount, conversion.currency) == (Decimal(amount), currency)

    clock.advance(days=2)
    assert (await dispatcher.run_until_idle()).sent == 0
    assert len(smtp_sink.messages) == 1


async def test_stripe(client, account, db, clock, dispatcher, smtp_sink):
    await configure(client, account, "stripe", STRIPE_SECRET)

    async def capture() -> str:
        event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
        response = await post_stripe(client, account, event, clock)
        assert response.status_code == 200, response.text
        return str(response.json()["lead_id"])

    async def purchase() -> httpx.Response:
        # Stripe's recovery link opens a new session: it matches the lead by email.
        session = checkout_session(session_id="cs_test_recovered", status="complete")
        event = stripe_event("checkout.session.completed", session, unix(clock))
        return await post_stripe(client, account, event, clock)

    await _flow(
        client,
        account,
        db,
        clock,
        dispatcher,
        smtp_sink,
        source="abandoned_checkout",
        email="jenny.rosen@example.com",
        capture=capture,
        purchase=purchase,
        amount="49.00",
        currency="EUR",
    )


async def test_shopify_through_the_abandonment_job(
    client, account, db, clock, dispatcher, smtp_sink, settings
):
    await configure(client, account, "shopify", SHOPIFY_SECRET)

    async def capture() -> str:
        response = await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
        assert response.status_code == 200, response.text
        assert response.json()["lead_id"] is None
        clock.advance(minutes=settings.shopify_abandon_after_minutes)
        report = await abandon_due_checkouts(
            db, clock, dt.timedelta(days=settings.attribution_days)
        )
        assert report.abandoned == 1
        leads = (await client.get("/v1/leads", headers=auth(account))).json()["items"]
        assert len(leads) == 1
        return str(leads[0]["id"])

    async def purchase() -> httpx.Response:
        return await post_shopify(client, account, "orders/paid", shopify_order(clock))

    await _flow(
        client,
        account,
        db,
        clock,
        dispatcher,
        smtp_sink,
        source="abandoned_checkout",
        email="bob.norman@example.com",
        capture=capture,
        purchase=purchase,
        amount="398.00",
        currency="USD",
    )


async def test_woocommerce(client, account, db, clock, dispatcher, smtp_sink):
    await configure(client, account, "woocommerce", WC_SECRET)

    async def capture() -> str:
        response = await post_wc(client, account, wc_order(clock, status="pending"))
        assert response.status_code == 200, response.text
        return str(response.json()["lead_id"])

    async def purchase() -> httpx.Response:
        return await post_wc(client, account, wc_order(clock, status="processing"), "order.updated")

    await _flow(
        client,
        account,
        db,
        clock,
        dispatcher,
        smtp_sink,
        source="unfinished_order",
        email="john.doe@example.com",
        capture=capture,
        purchase=purchase,
        amount="29.35",
        currency="USD",
    )


async def test_paypro(client, account, db, clock, dispatcher, smtp_sink):
    await configure(client, account, "paypro", PAYPRO_SECRET, PAYPRO_VALIDATION_KEY)

    async def capture() -> str:
        response = await post_paypro(client, account, paypro_ipn("OrderOnWaiting"))
        assert response.status_code == 200, response.text
        return str(response.json()["lead_id"])

    async def purchase() -> httpx.Response:
        return await post_paypro(client, account, paypro_ipn("OrderCharged"))

    await _flow(
        client,
        account,
        db,
        clock,
        dispatcher,
        smtp_sink,
        source="unfinished_order",
        email="maria.garcia@example.com",
        capture=capture,
        purchase=purchase,
        amount="49.99",
        currency="EUR",
    )
