"""Secret rotation: both secrets sign during the grace period, then only the new one."""

from __future__ import annotations

import datetime as dt

from leadflow.app import create_app
from tests.notifications.helpers import add_endpoint
from tests.support.api import app_client, auth
from tests.support.events import event_body, post_event


async def _capture(client, account, clock, reference: str) -> None:
    body = event_body(occurred_at=clock.now().isoformat(), reference=reference)
    r = await post_event(client, account, body, clock=clock)
    assert r.status_code == 200, r.text


async def test_rotate_secret(client, account, clock, receiver, notifier, iln_settings):
    endpoint = await add_endpoint(client, account, receiver)
    old = endpoint["secret"]
    path = f"/v1/iln/endpoints/{endpoint['id']}"

    r = await client.post(f"{path}/rotate-secret", headers=auth(account))
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert old not in r.text
    grace = dt.timedelta(hours=iln_settings.iln_secret_rotation_hours)
    expires = dt.datetime.fromisoformat(r.json()["previous_secret_expires_at"])
    assert expires == clock.now() + grace
    shown = await client.get(path, headers=auth(account))
    assert new not in shown.text and old not in shown.text

    receiver.secrets = [new]  # a receiver that already switched
    await _capture(client, account, clock, "chk_1")
    await notifier.run_once()
    [request] = receiver.requests
    assert request.verified
    assert len(request.signatures) == 2
    under_new, under_old = request.valid_under(new), request.valid_under(old)
    assert len(under_new) == 1 and len(under_old) == 1
    assert under_new != under_old

    clock.set(expires - dt.timedelta(seconds=1))
    await _capture(client, account, clock, "chk_2")
    await notifier.run_once()
    assert len(receiver.requests[1].valid_under(old)) == 1  # still in the grace period

    clock.set(expires)
    await _capture(client, account, clock, "chk_3")
    await notifier.run_once()
    last = receiver.requests[2]
    assert last.verified
    assert len(last.signatures) == 1
    assert last.valid_under(new) == last.signatures
    assert last.valid_under(old) == []


async def test_rotating_twice_drops_the_first_secret(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver)
    first = endpoint["secret"]
    path = f"/v1/iln/endpoints/{endpoint['id']}/rotate-secret"
    second = (await client.post(path, headers=auth(account))).json()["secret"]
    clock.advance(hours=1)
    third = (await client.post(path, headers=auth(account))).json()["secret"]
    receiver.secrets = [third]
    await _capture(client, account, clock, "chk_1")
    await notifier.run_once()
    [request] = receiver.requests
    assert request.verified
    assert len(request.signatures) == 2
    assert request.valid_under(first) == []
    assert len(request.valid_under(second)) == 1
    assert len(request.valid_under(third)) == 1


async def test_queued_before_rotation_is_signed_at_send_time(
    client, account, clock, receiver, notifier
):
    endpoint = await add_endpoint(client, account, receiver)
    await _capture(client, account, clock, "chk_1")
    r = await client.post(
        f"/v1/iln/endpoints/{endpoint['id']}/rotate-secret", headers=auth(account)
    )
    new = r.json()["secret"]
    clock.advance(days=2)  # delivered only after the grace period
    await notifier.run_once()
    [request] = receiver.requests
    assert request.valid_under(new) == request.signatures
    assert request.valid_under(endpoint["secret"]) == []


async def test_no_grace_period(account, clock, db, receiver, notifier, iln_settings):
    app = create_app(
        iln_settings.model_copy(update={"iln_secret_rotation_hours": 0}),
        clock=clock,
        db=db,
        auto_migrate=False,
    )
    async with app_client(app) as client:
        endpoint = await add_endpoint(client, account, receiver)
        r = await client.post(
            f"/v1/iln/endpoints/{endpoint['id']}/rotate-secret", headers=auth(account)
        )
        assert r.status_code == 200
        assert r.json()["previous_secret_expires_at"] is None
        new = r.json()["secret"]
        receiver.secrets = [new]
        await _capture(client, account, clock, "chk_1")
    await notifier.run_once()
    [request] = receiver.requests
    assert request.verified
    assert request.valid_under(new) == request.signatures
    assert request.valid_under(endpoint["secret"]) == []
