"""The FastAPI application and its wiring (the composition root for the API)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from leadflow import __version__
from leadflow.api import install_api
from leadflow.api.openapi import DESCRIPTION
from leadflow.config import Settings
from leadflow.kit.clock import Clock, SystemClock
from leadflow.kit.db import Database
from leadflow.kit.metrics import serve_metrics
from leadflow.kit.migrate import upgrade
from leadflow.kit.secrets import load_keyring, use_keyring
from leadflow.templates.isolation import warm_up
from leadflow.worker import Worker, build_worker

log = logging.getLogger("leadflow")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    run_worker: bool = False,
    auto_migrate: bool | None = None,
) -> FastAPI:
    """Build the app. ``auto_migrate`` defaults to on for SQLite (the embedded default)."""
    settings = settings or Settings()
    use_keyring(load_keyring(settings))  # the envelope key of the secrets at rest
    owns_db = db is None
    database = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    migrate_on_start = settings.is_sqlite if auto_migrate is None else auto_migrate

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await upgrade(database.engine)
        warm_up(settings)  # templates compiled, locale data, template limits: before serving
        stop_metrics = None
        if settings.metrics_port is not None:  # a port of their own, not public
            stop_metrics = serve_metrics(settings.metrics_host, settings.metrics_port)
        worker: Worker | None = None
        if run_worker:
            worker = build_worker(settings, database, app.state.clock)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.aclose()
            queue = getattr(app.state, "event_queue", None)
            if queue is not None:
                await queue.aclose()
            notifier = getattr(app.state, "notifier", None)
            if notifier is not None:
                await notifier.aclose()
            if owns_db:
                await database.dispose()
            if stop_metrics is not None:
                stop_metrics()

    app = FastAPI(
        title="leadflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.db = database
    install_api(app)
    return app
