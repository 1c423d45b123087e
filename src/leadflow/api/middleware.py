"""ASGI middleware and error handling of the HTTP API."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.kit import logs
from leadflow.kit.db import is_unavailable
from leadflow.kit.errors import (
    AppError,
    FieldProblem,
    NotFound,
    problem_response,
    validation_problem,
)
from leadflow.kit.metrics import REQUEST_DURATION

log = logging.getLogger("leadflow.api")

# How long clients are asked to wait while the database is away.
RETRY_AFTER_SECONDS = 5
NUL = "\x00"
NOT_STORABLE = "must not contain NUL characters"
# The largest JSON body the merchant API takes (webhook intake has its own, streamed limit).
MAX_API_BODY = 4 * 1024 * 1024


REQUEST_ID_HEADER = "X-Request-ID"
# A client's request id is kept when it is short and plain (it is echoed and logged).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when sane, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            offered = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(offered):
                return offered
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/v1/campaigns/{campaign_id}``), never the
    path itself: one series per route, however many ids are requested."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContext:
    """Outermost: gives each request its id (``X-Request-ID``, answered on every response,
    errors included), binds it to the request's log lines, and times the request by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = logs.bind(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette answers an unexpected error outside every middleware, so the 500 is
            # sent here to carry the id; the error still goes up, to be logged as ever.
            if status is None:
                failed = AppError(500, "internal_error", "An unexpected error occurred.")
                await problem_response(failed)(scope, receive, send_with_id)
            raise  # the request id stays bound for the error's log line
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            status_class = f"{(status or 500) // 100}xx"
            REQUEST_DURATION.labels(method, route_of(scope), status_class).observe(
                time.perf_counter() - started
            )
        logs.unbind(token)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RefuseNul:
    """NUL (U+0000) can never be stored (PostgreSQL text cannot hold it), so it is refused at
    the edge for every input rather than route by route: in a path it names nothing (404); in
    a query parameter or a JSON body field it is a 422 naming the parameter or field. Webhook
    intake checks its bodies itself, while it reads them under its own size limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if NUL in scope.get("path", ""):
            await problem_response(NotFound())(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(query, keep_blank_values=True)
        names = sorted({name for name, value in pairs if NUL in name + value})
        if names:
            await _refuse(names, scope, receive, send)
            return
        if not _json_body(scope):
            await self.app(scope, receive, send)
            return
        body = await _read(receive, MAX_API_BODY)
        if body is None:
            too_large = AppError(
                413, "payload_too_large", f"The body exceeds the {MAX_API_BODY}-byte limit."
            )
            await problem_response(too_large)(scope, receive, send)
            return
        # A NUL can only be written \u0000 in JSON: parse only the bodies that contain it.
        fields = sorted(set(_nul_fields(body))) if b"\\u0000" in body else []
        if fields:
            await _refuse(fields, scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _json_body(scope: Scope) -> bool:
    if scope["method"] not in ("POST", "PUT", "PATCH") or scope["path"].startswith("/v1/webhooks/"):
        return False
    kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    return kind.endswith(b"json")


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing to check
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _nul_fields(body: bytes) -> Iterator[str]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return  # not JSON: the route answers that
    yield from _walk(data, "")


def _walk(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                yield where
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")  # as validation errors name it


async def _refuse(fields: list[str], scope: Scope, receive: Receive, send: Send) -> None:
    problems = [FieldProblem(field=name, message=NOT_STORABLE) for name in fields]
    await problem_response(validation_problem(problems))(scope, receive, send)


def install_outage_handler(app: FastAPI) -> None:
    """A database that is away answers 503 with Retry-After (platforms and clients retry) and
    one log line, not a 500 with a traceback per request; the keep-alive connection stays
    usable, and the pool reconnects by itself once the database is back."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            unavailable = AppError(
                503,
                "database_unavailable",
                "The database is unavailable; retry later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            return problem_response(unavailable)
        log.error("database error", exc_info=exc)
        return problem_response(AppError(500, "internal_error", "An unexpected error occurred."))

    app.add_exception_handler(SQLAlchemyError, handle)
    app.add_exception_handler(OSError, handle)
