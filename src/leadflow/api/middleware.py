"""ASGI middleware of the HTTP API."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from leadflow.kit.errors import NotFound, problem_response


class RefuseNulPaths:
    """A NUL byte can never name anything here (PostgreSQL cannot even store it): answer 404
    before any route tries to look it up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope.get("path", ""):
            response = problem_response(NotFound())
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
