"""ILN fixtures: the app and a Notifier with the SSRF guard off (the receiver is on
127.0.0.1), the default guarded app for SSRF tests, and real HTTP receivers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.notifications.delivery import Notifier
from leadflow.notifications.models import IlnDelivery
from tests.conftest import auth
from tests.dispatch.conftest import dispatcher, mail_settings, smtp_sink  # noqa: F401
from tests.notifications.receiver import Receiver


@pytest.fixture
def iln_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"iln_allow_private": True})


async def _close_app(app: FastAPI) -> None:
    # httpx's ASGITransport runs no lifespan: close the lazily built ping notifier here.
    notifier = getattr(app.state, "notifier", None)
    if notifier is not None:
        await notifier.aclose()


@pytest.fixture
async def app(iln_settings: Settings, clock: ManualClock, db: Database) -> AsyncIterator[FastAPI]:
    app = create_app(iln_settings, clock=clock, db=db, auto_migrate=False)
    yield app
    await _close_app(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Overrides the root ``client`` (so ``account``/``other_account`` use it too)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def guarded_client(
    settings: Settings, clock: ManualClock, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the default settings: SSRF guard on."""
    assert settings.iln_allow_private is False
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await _close_app(app)


NotifierFactory = Callable[..., Notifier]


@pytest.fixture
async def make_notifier(
    iln_settings: Settings, db: Database, clock: ManualClock
) -> AsyncIterator[NotifierFactory]:
    made: list[Notifier] = []

    def make(**overrides: Any) -> Notifier:
        notifier = Notifier(
            iln_settings.model_copy(update=overrides), db, clock, rng=random.Random(0)
        )
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.aclose()


@pytest.fixture
def notifier(make_notifier: NotifierFactory) -> Notifier:
    return make_notifier()


ReceiverFactory = Callable[[], Awaitable[Receiver]]


@pytest.fixture
async def make_receiver() -> AsyncIterator[ReceiverFactory]:
    started: list[Receiver] = []

    async def make() -> Receiver:
        receiver = Receiver()
        await receiver.start()
        started.append(receiver)
        return receiver

    yield make
    await asyncio.gather(*(receiver.stop() for receiver in started))


@pytest.fixture
async def receiver(make_receiver: ReceiverFactory) -> Receiver:
    return await make_receiver()


# -- helpers ------------------------------------------------------------------------------


async def add_endpoint(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    receiver: Receiver | None = None,
    *,
    url: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create an endpoint (pointing at ``receiver``, which learns its secret)."""
    body = {"url": url or (receiver.url if receiver else None), **fields}
    r = await client.post("/v1/iln/endpoints", json=body, headers=auth(account))
    assert r.status_code == 201, r.text
    created = r.json()
    if receiver is not None:
        receiver.secrets.append(created["secret"])
    return created


async def deliveries(
    client: httpx.AsyncClient, account: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    r = await client.get("/v1/iln/deliveries", params=params, headers=auth(account))
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def only_delivery(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    items = await deliveries(client, account)
    assert len(items) == 1, items
    return items[0]


async def count_deliveries(db: Database) -> int:
    async with db.session() as s:
        return (await s.execute(select(func.count()).select_from(IlnDelivery))).scalar_one()


async def create_campaign(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    *,
    name: str = "Cart recovery",
    source: str = "abandoned_checkout",
    status: str = "active",
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    steps = steps or [{"delay": "PT2H", "template": f"{source}/1"}]
    body = {
        "name": name,
        "source": source,
        "status": status,
        "variants": [{"name": "A", "steps": steps}],
    }
    r = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert r.status_code == 201, r.text
    return r.json()
