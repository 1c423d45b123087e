"""The HTTP API: every router, its request dependencies, health and the OpenAPI document.
Nothing imports this package but the composition roots."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow.api.abtest import router as abtest_router
from leadflow.api.accounts import router as accounts_router
from leadflow.api.campaigns import router as campaigns_router
from leadflow.api.capture import router as capture_router
from leadflow.api.dashboard import router as dashboard_router
from leadflow.api.docs import install_docs
from leadflow.api.events import router as events_router
from leadflow.api.health import router as health_router
from leadflow.api.integrations import router as integrations_router
from leadflow.api.leads import router as leads_router
from leadflow.api.links import router as links_router
from leadflow.api.mail_webhooks import router as mail_webhooks_router
from leadflow.api.metrics import router as metrics_router
from leadflow.api.middleware import RefuseNul, RequestContext, install_outage_handler
from leadflow.api.notifications import router as notifications_router
from leadflow.api.openapi import install_openapi
from leadflow.api.platform_webhooks import router as platform_webhooks_router
from leadflow.api.session import router as session_router
from leadflow.api.stats import router as stats_router
from leadflow.kit.errors import install_error_handlers

ROUTERS = (
    health_router,
    events_router,
    platform_webhooks_router,
    accounts_router,
    session_router,
    leads_router,
    campaigns_router,
    links_router,
    notifications_router,
    stats_router,
    abtest_router,
    integrations_router,
    metrics_router,
    dashboard_router,
    # capture
    capture_router,
    # bounces
    mail_webhooks_router,
)


def install_api(app: FastAPI) -> None:
    """Error handlers, middleware, every route, the OpenAPI document and its pages (the app
    is made without FastAPI's own: see api/docs.py)."""
    install_error_handlers(app)
    install_outage_handler(app)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestContext)  # added last: the outermost
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    install_docs(app)
