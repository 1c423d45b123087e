"""The contract tests: clients generated from the committed ``openapi/openapi.json`` by
mainstream generators, checked by their own toolchains and run against the app on a socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from tests.support.servers import free_port


@pytest.fixture
async def live_url(settings: Settings, clock: ManualClock, db: Database) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port (one per backend): generated clients speak
    real HTTP to it, and a subprocess (node) can reach it too."""
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the server
                    pytest.fail("uvicorn exited before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
