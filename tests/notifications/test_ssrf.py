"""The SSRF guard (default settings): refused when saved, and again when connecting."""

from __future__ import annotations

import pytest

from leadflow.notifications.ssrf import address_allowed
from tests.notifications.helpers import add_endpoint, only_delivery
from tests.support.api import auth
from tests.support.events import event_body, post_event

PRIVATE_URLS = [
    "http://127.0.0.1/x",
    "https://127.0.0.1/x",
    "http://169.254.169.254/latest/meta-data",
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.1/x",
    "https://192.168.1.10/x",
    "https://172.16.0.1/x",
    "https://100.64.0.1/x",  # carrier-grade NAT
    "https://100.100.100.200/x",  # Alibaba metadata
    "https://0.0.0.0/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[fd00:ec2::254]/x",  # AWS IPv6 metadata
    "https://[fe80::1]/x",
    "https://localhost/x",  # a name that resolves to loopback
    "https://2130706433/x",  # 127.0.0.1 as one number
    "https://127.1/x",
]


def _fields(response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


async def test_private_urls_refused(guarded_client, account):
    for url in PRIVATE_URLS:
        r = await guarded_client.post("/v1/iln/endpoints", json={"url": url}, headers=auth(account))
        assert r.status_code == 422, (url, r.text)
        assert _fields(r) == ["url"], (url, r.json())
    r = await guarded_client.get("/v1/iln/endpoints", headers=auth(account))
    assert r.json()["items"] == []


async def test_public_ip_literal_accepted(guarded_client, account):
    r = await guarded_client.post(
        "/v1/iln/endpoints", json={"url": "https://93.184.216.34/hook"}, headers=auth(account)
    )
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "https://93.184.216.34/hook"


async def test_plain_http_refused_even_when_public(guarded_client, account):
    r = await guarded_client.post(
        "/v1/iln/endpoints", json={"url": "http://93.184.216.34/hook"}, headers=auth(account)
    )
    assert r.status_code == 422
    assert _fields(r) == ["url"]


async def test_unresolvable_name_refused(guarded_client, account):
    r = await guarded_client.post(
        "/v1/iln/endpoints", json={"url": "https://no-such-host.invalid/x"}, headers=auth(account)
    )
    assert r.status_code == 422
    assert _fields(r) == ["url"]


async def test_patch_to_private_url_refused(guarded_client, account):
    r = await guarded_client.post(
        "/v1/iln/endpoints", json={"url": "https://93.184.216.34/hook"}, headers=auth(account)
    )
    path = f"/v1/iln/endpoints/{r.json()['id']}"
    for url in ["https://127.0.0.1/x", "https://[::1]/x", "http://169.254.169.254/"]:
        r = await guarded_client.patch(path, json={"url": url}, headers=auth(account))
        assert r.status_code == 422, (url, r.text)
        assert _fields(r) == ["url"]
    r = await guarded_client.get(path, headers=auth(account))
    assert r.json()["url"] == "https://93.184.216.34/hook"


async def test_delivery_refused_at_connect_time(client, account, clock, receiver, make_notifier):
    """Saved while private addresses were allowed, delivered by a guarded notifier: the
    connection is refused before anything reaches the receiver."""
    await add_endpoint(client, account, receiver)
    r = await post_event(
        client, account, event_body(occurred_at=clock.now().isoformat()), clock=clock
    )
    assert r.status_code == 200
    guarded = make_notifier(iln_allow_private=False)
    report = await guarded.run_once()
    assert report.claimed == 1
    assert report.delivered == 0
    assert receiver.requests == []
    delivery = await only_delivery(client, account)
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] is None
    assert "non-public" in delivery["last_error"]
    assert "127.0.0.1" in delivery["last_error"]


async def test_unresolvable_host_at_delivery_is_an_ordinary_failure(
    client, account, clock, make_notifier
):
    """A name that stopped resolving is a failed attempt (retried), not a crash."""
    await add_endpoint(client, account, url="http://no-such-host.invalid/hook")
    await post_event(client, account, event_body(occurred_at=clock.now().isoformat()), clock=clock)
    guarded = make_notifier(iln_allow_private=False)
    report = await guarded.run_once()
    assert (report.claimed, report.delivered, report.retried) == (1, 0, 1)
    delivery = await only_delivery(client, account)
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] is None
    assert "no-such-host.invalid" in delivery["last_error"]


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "2002:7f00:1::1", "::7f00:1", "::ffff:0:7f00:1", "::ffff:10.0.0.1"],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(address):
    assert not address_allowed(address)


def test_public_ipv6_and_6to4_of_public_ipv4_are_allowed():
    assert address_allowed("2606:4700::1111")
    assert address_allowed("2002:5db8:d822::1")  # 6to4 of 93.184.216.34
