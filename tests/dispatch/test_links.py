"""Links in received emails (unsubscribe, tracked checkout) and the suppression list."""

from __future__ import annotations

from leadflow.templates.tokens import CLICK, UNSUBSCRIBE, make_token, read_token
from tests.dispatch.helpers import (
    THREE_STEPS,
    enrollment,
    enrollments,
    event_now,
    html_part,
    links,
    messages,
    path_of,
    tamper,
    text_part,
    unsubscribe_link,
    visits,
)
from tests.support.api import BASE_URL, auth, put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}
RECOVERY_URL = "https://shop.example.com/recover/chk_1?step=pay&x=1"


async def _first_email(client, account, clock, dispatcher, smtp_sink):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    lead = await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    return campaign, lead, smtp_sink.messages[0]


async def _suppressions(client, account) -> list[dict]:
    response = await client.get("/v1/suppressions", headers=auth(account))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_unsubscribe_get_confirms_and_post_unsubscribes(
    client, account, clock, dispatcher, smtp_sink, db
):
    _, lead, email = await _first_email(client, account, clock, dispatcher, smtp_sink)
    url = unsubscribe_link(email)
    assert url in text_part(email)

    page = await client.get(path_of(url))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "jane@example.com" in page.text and "method='post'" in page.text
    # A mail scanner following the link must not unsubscribe anyone.
    assert await _suppressions(client, account) == []
    assert (await enrollment(db)).state == "active"

    done = await client.post(path_of(url), **ONE_CLICK)
    assert done.status_code == 200, done.text
    assert "unsubscribed" in done.text
    (entry,) = await _suppressions(client, account)
    assert entry["email"] == "jane@example.com" and entry["reason"] == "unsubscribed"
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "suppressed"
    got = await client.get(f"/v1/leads/{lead['lead_id']}", headers=auth(account))
    assert got.json()["status"] == "unsubscribed"
    # Idempotent: a second POST (provider retry) is fine and changes nothing.
    again = await client.post(path_of(url), **ONE_CLICK)
    assert again.status_code == 200
    assert len(await _suppressions(client, account)) == 1

    for _ in range(4):
        clock.advance(days=1)
        assert (await dispatcher.run_once()).sent == 0
    assert len(smtp_sink.messages) == 1
    assert [m.step for m in await messages(db)] == [1]


async def test_unsubscribe_with_a_bad_token_is_404(
    client, account, clock, dispatcher, smtp_sink, db
):
    _, lead, email = await _first_email(client, account, clock, dispatcher, smtp_sink)
    token = unsubscribe_link(email).rsplit("/", 1)[1]
    claims = read_token(token)
    assert claims is not None and claims.subject_id == lead["lead_id"]
    (click_url,) = links(text_part(email), "c")[:1]
    bad = [
        tamper(token),
        token.split(".")[0],  # no signature
        "not-a-token",
        make_token("guessed-secret", UNSUBSCRIBE, account["id"], lead["lead_id"]),
        click_url.rsplit("/", 1)[1],  # a click token is not an unsubscribe token
    ]
    for candidate in bad:
        assert (await client.get(f"/u/{candidate}")).status_code == 404, candidate
        assert (await client.post(f"/u/{candidate}", **ONE_CLICK)).status_code == 404, candidate
    assert await _suppressions(client, account) == []
    assert (await enrollment(db)).state == "active"
    clock.advance(days=1)
    assert (await dispatcher.run_once()).sent == 1


async def test_tracked_link_redirects_to_the_checkout_and_counts_visits(
    client, account, clock, dispatcher, smtp_sink, db
):
    campaign, lead, email = await _first_email(client, account, clock, dispatcher, smtp_sink)
    text_links = links(text_part(email), "c")
    assert text_links and set(text_links) == set(links(html_part(email), "c"))
    click_url = text_links[0]
    (message,) = await messages(db)

    first = await client.get(path_of(click_url))
    assert first.status_code == 302
    assert first.headers["location"] == RECOVERY_URL
    assert first.headers["cache-control"] == "no-store"
    (visit,) = await visits(db)
    assert (visit.lead_id, visit.variant_id, visit.campaign_id) == (
        lead["lead_id"],
        campaign["variants"][0]["id"],
        campaign["id"],
    )
    assert visit.message_id == message.id and visit.step == 1 and visit.clicks == 1
    assert visit.first_at == clock.now()

    clock.advance(minutes=10)
    second = await client.get(path_of(click_url))
    assert second.status_code == 302 and second.headers["location"] == RECOVERY_URL
    (visit,) = await visits(db)
    assert visit.clicks == 2 and visit.last_at == clock.now()

    # The next step's link counts toward the same visit (one per lead and variant).
    clock.advance(days=1)
    assert (await dispatcher.run_once()).sent == 1
    (step2_link,) = links(text_part(smtp_sink.messages[1]), "c")
    assert step2_link != click_url
    response = await client.get(path_of(step2_link))
    assert response.status_code == 302 and response.headers["location"] == RECOVERY_URL
    (visit,) = await visits(db)
    assert visit.clicks == 3 and visit.step == 1


async def test_forged_click_tokens_are_404_not_redirects(
    client, account, clock, dispatcher, smtp_sink, db
):
    _, _, email = await _first_email(client, account, clock, dispatcher, smtp_sink)
    click_url = links(text_part(email), "c")[0]
    token = click_url.rsplit("/", 1)[1]
    (message,) = await messages(db)
    bad = [
        tamper(token),
        token.split(".")[0] + ".",
        make_token("guessed-secret", CLICK, account["id"], message.id),
        unsubscribe_link(email).rsplit("/", 1)[1],  # right secret, wrong kind
        "eyJ1cmwiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9.abc",
    ]
    for candidate in bad:
        response = await client.get(f"/c/{candidate}")
        assert response.status_code == 404, (candidate, response.status_code)
        assert "location" not in response.headers
    assert await visits(db) == []
    assert (await client.get(path_of(click_url))).status_code == 302


async def test_suppressed_address_gets_nothing_until_removed(
    client, account, clock, dispatcher, smtp_sink, db
):
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    response = await client.post(
        "/v1/suppressions", json={"email": "Jane@Example.com"}, headers=auth(account)
    )
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "jane@example.com"
    assert response.json()["reason"] == "manual"

    await ingest(
        client, account, clock, event_now(clock, email="JANE@example.com", reference="chk_sup")
    )
    clock.advance(hours=2)
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.stopped == 1, report
    (stopped,) = await enrollments(db)
    assert stopped.state == "stopped" and stopped.stop_reason == "suppressed"
    clock.advance(days=2)
    assert (await dispatcher.run_once()).claimed == 0
    assert smtp_sink.messages == []
    assert await messages(db) == []
    listed = await client.get("/v1/suppressions?email=jane@example.com", headers=auth(account))
    assert [s["email"] for s in listed.json()["items"]] == ["jane@example.com"]

    removed = await client.delete("/v1/suppressions/jane@example.com", headers=auth(account))
    assert removed.status_code == 204
    assert await _suppressions(client, account) == []
    missing = await client.delete("/v1/suppressions/jane@example.com", headers=auth(account))
    assert missing.status_code == 404

    # The stopped sequence stays stopped; a new lead for the address is followed up.
    await ingest(client, account, clock, event_now(clock, reference="chk_new"))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    (received,) = smtp_sink.messages
    assert received["To"] == "jane@example.com"
    states = {e.lead_id: e.state for e in await enrollments(db)}
    assert sorted(states.values()) == ["active", "stopped"]


async def test_suppressing_stops_an_active_enrollment(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _first_email(client, account, clock, dispatcher, smtp_sink)
    response = await client.post(
        "/v1/suppressions",
        json={"email": "jane@example.com", "reason": "complaint"},
        headers=auth(account),
    )
    assert response.status_code == 201
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "suppressed"
    clock.advance(days=3)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    assert BASE_URL in unsubscribe_link(smtp_sink.messages[0])


async def test_unsubscribing_stops_every_sequence_of_the_address(
    client, account, clock, dispatcher, smtp_sink, db
):
    await put_settings(client, account, min_delays={"trial": "PT1H"})
    trial_steps = [{"delay": "P2D", "template": "trial/1"}]
    await create_campaign(
        client, account, name="Trial nurture", source="trial", steps=trial_steps, status="active"
    )
    _, _, email = await _first_email(client, account, clock, dispatcher, smtp_sink)
    await ingest(
        client, account, clock, event_now(clock, reference="trial_1", type="trial.started")
    )
    assert [e.state for e in await enrollments(db)] == ["active", "active"]

    response = await client.post(path_of(unsubscribe_link(email)), **ONE_CLICK)
    assert response.status_code == 200
    assert {(e.state, e.stop_reason) for e in await enrollments(db)} == {("stopped", "suppressed")}
    clock.advance(days=5)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
