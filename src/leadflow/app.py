"""The FastAPI application and its wiring (the composition root for the API)."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from leadflow import __version__
from leadflow.accounts.sessions import SETUP_LINK_LIFETIME, create_setup_link
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
    announce_setup: bool = False,
) -> FastAPI:
    """Build the app. ``auto_migrate`` defaults to on for SQLite (the embedded default).
    ``announce_setup`` (``leadflow serve`` and ``leadflow api``): on a database without any
    account, print a single-use link that creates the first one."""
    settings = settings or Settings()
    use_keyring(load_keyring(settings))  # the envelope key of the secrets at rest
    owns_db = db is None
    database = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    migrate_on_start = settings.is_sqlite if auto_migrate is None else auto_migrate

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await upgrade(database.engine)
        if announce_setup:
            await _announce_setup(settings, database, app.state.clock)
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
        docs_url=None,  # api/docs.py serves both pages without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.db = database
    install_api(app)
    return app


async def _announce_setup(settings: Settings, database: Database, clock: Clock) -> None:
    """The first run: no account yet, so nobody can sign in. A setup link (replacing the one
    of an earlier start) creates the first account, printed where the operator looks, the
    way Jupyter prints its token URL. Its token rides in the URL fragment, which browsers do
    not send to the server (nor to its access log)."""
    try:
        async with database.session() as session:
            token = await create_setup_link(session, clock.now())
    except Exception as exc:  # the database may be away or unmigrated: serve anyway
        log.warning("could not check for a first account (no setup link): %s", exc)
        return
    if token is None:
        return
    url = f"{settings.base_url.rstrip('/')}/dashboard/#/setup?token={token}"
    hours = int(SETUP_LINK_LIFETIME.total_seconds() // 3600)
    print(
        "\n    leadflow has no account yet. To create the first one, open this link"
        f"\n    (it works once, for {hours} hours; each start without an account prints a new"
        f" one):\n\n        {url}\n",
        file=sys.stderr,
        flush=True,
    )
