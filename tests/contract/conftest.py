"""The contract tests: clients generated from the committed ``openapi/openapi.json`` by
mainstream generators, checked by their own toolchains and run against the app on a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from tests.support.servers import serve_app


@pytest.fixture
async def live_url(settings: Settings, clock: ManualClock, db: Database) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port (one per backend): generated clients speak
    real HTTP to it, and a subprocess (node) can reach it too."""
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with serve_app(app) as url:
        yield url
