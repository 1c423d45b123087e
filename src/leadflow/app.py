"""The FastAPI application and its wiring (the composition root for the API)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from leadflow import __version__
from leadflow.abtest.router import router as abtest_router
from leadflow.accounts.router import router as accounts_router
from leadflow.campaigns.router import router as campaigns_router
from leadflow.config import Settings
from leadflow.health import router as health_router
from leadflow.ingest.router import router as ingest_router
from leadflow.ingest.schemas import BatchEventIn, EventBatchIn, EventIn
from leadflow.integrations.router import router as integrations_router
from leadflow.integrations.webhooks import router as platform_webhooks_router
from leadflow.kit.clock import Clock, SystemClock
from leadflow.kit.db import Database
from leadflow.kit.errors import (
    AppError,
    FieldProblem,
    Problem,
    error_responses,
    install_error_handlers,
    problem_response,
)
from leadflow.leads.router import router as leads_router
from leadflow.migrate import upgrade
from leadflow.notifications.router import document_notifications
from leadflow.notifications.router import router as notifications_router
from leadflow.stats.router import router as stats_router
from leadflow.tracking.router import router as tracking_router
from leadflow.worker import Worker, build_worker

log = logging.getLogger("leadflow")

DESCRIPTION = """\
leadflow turns ecommerce webhooks (abandoned checkouts, unfinished orders, trials,
renewals) into leads and follows them up.

* Inbound webhooks are signed with the account's `whsec_…` secret using
  [Standard Webhooks](https://www.standardwebhooks.com/).
* The merchant API takes `Authorization: Bearer <api key>`.
* Errors are RFC 9457 problem details (`application/problem+json`) with an `errors`
  list naming each bad field.
* Lists answer `{"items": [...], "next_cursor": ...}` and take `limit` and `cursor`.
* Ids are opaque strings, timestamps RFC 3339 UTC, money a decimal string plus an
  ISO 4217 currency.
"""

_EXTRA_SCHEMAS = (Problem, FieldProblem, EventIn, BatchEventIn, EventBatchIn)


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
    owns_db = db is None
    database = db or Database(settings.database_url, pool_size=settings.db_pool_size)
    migrate_on_start = settings.is_sqlite if auto_migrate is None else auto_migrate

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await upgrade(database.engine)
        worker: Worker | None = None
        if run_worker:
            worker = build_worker(settings, database, app.state.clock)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.aclose()
            notifier = getattr(app.state, "notifier", None)
            if notifier is not None:
                await notifier.aclose()
            if owns_db:
                await database.dispose()

    app = FastAPI(
        title="leadflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.db = database
    install_error_handlers(app)
    app.add_middleware(RefuseNulPaths)
    app.include_router(health_router)
    app.include_router(ingest_router)
    app.include_router(platform_webhooks_router)
    app.include_router(accounts_router)
    app.include_router(leads_router)
    app.include_router(campaigns_router)
    app.include_router(tracking_router)
    app.include_router(notifications_router)
    app.include_router(stats_router)
    app.include_router(abtest_router)
    app.include_router(integrations_router)
    document_notifications(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class RefuseNulPaths:
    """A NUL byte can never name anything here (PostgreSQL cannot even store it): answer 404
    before any route tries to look it up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope.get("path", ""):
            response = problem_response(AppError(404, "not_found", "Not found."))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _EXTRA_SCHEMAS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in model_schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = model_schema
    # FastAPI's own validation error schemas are never sent: every error is a Problem.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if _is_fastapi_422(operation):
                operation["responses"].update({str(k): v for k, v in error_responses(422).items()})
    app.openapi_schema = schema
    return schema


def _is_fastapi_422(operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("422", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")
