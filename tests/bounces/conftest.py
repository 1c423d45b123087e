"""The API with the SSRF guard off for the loopback ILN receiver, a notifier and a real
receiver, and the test SNS certificate source in place of the AWS host."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from leadflow.api.mail_webhooks import get_sns_client
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.integrations.ses import SnsClient
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.notifications.delivery import Notifier
from tests.bounces.helpers import CertificateSource
from tests.notifications.receiver import Receiver
from tests.support.api import app_client


@pytest.fixture
def iln_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"iln_allow_private": True})


@pytest.fixture
async def app(iln_settings: Settings, clock: ManualClock, db: Database) -> AsyncIterator[FastAPI]:
    app = create_app(iln_settings, clock=clock, db=db, auto_migrate=False)
    yield app
    notifier = getattr(app.state, "notifier", None)
    if notifier is not None:
        await notifier.aclose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Overrides the root ``client`` (so ``account``/``other_account`` use it too)."""
    async with app_client(app) as c:
        yield c


@pytest.fixture
async def notifier(
    iln_settings: Settings, db: Database, clock: ManualClock
) -> AsyncIterator[Notifier]:
    notifier = Notifier(iln_settings, db, clock, rng=random.Random(0))
    yield notifier
    await notifier.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture(autouse=True)
def certificates(app: FastAPI) -> CertificateSource:
    """The AWS certificate host is external: the SNS client gets its certificates (and
    visits subscription URLs) through this source instead."""
    source = CertificateSource()
    sns = SnsClient(source)
    app.dependency_overrides[get_sns_client] = lambda: sns
    return source
