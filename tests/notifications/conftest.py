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

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.notifications.delivery import Notifier
from tests.notifications.receiver import Receiver
from tests.support.api import app_client


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
    async with app_client(app) as c:
        yield c


@pytest.fixture
async def guarded_client(
    settings: Settings, clock: ManualClock, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the default settings: SSRF guard on."""
    assert settings.iln_allow_private is False
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as c:
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
