"""Operations fixtures: an app whose ``/metrics`` answers with a token, the worker's sender."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from tests.ops.helpers import METRICS_TOKEN
from tests.support.api import ADMIN_TOKEN, BASE_URL, app_client


@pytest.fixture
def settings(db: Database) -> Settings:
    """The root settings, with a metrics token, and notifications allowed to 127.0.0.1 (the
    receivers of these tests)."""
    return Settings(
        database_url=db.url,
        admin_token=ADMIN_TOKEN,
        base_url=BASE_URL,
        metrics_token=SecretStr(METRICS_TOKEN),
        iln_allow_private=True,
    )


@pytest.fixture
async def app(settings: Settings, clock: ManualClock, db: Database) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    yield app
    notifier = getattr(app.state, "notifier", None)  # no lifespan under ASGITransport
    if notifier is not None:
        await notifier.aclose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Overrides the root ``client`` (so ``account`` uses it too)."""
    async with app_client(app) as c:
        yield c
