"""``/metrics`` on the API's own port, for Prometheus: answered only with the bearer token
``LEADFLOW_METRICS_TOKEN``, and not there at all without one (404, as for any unknown path).
``LEADFLOW_METRICS_PORT`` serves them on a port of their own instead."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leadflow.api.deps import SettingsDep
from leadflow.kit.errors import AppError, NotFound
from leadflow.kit.metrics import exposition

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


@router.get("/metrics", include_in_schema=False)
async def metrics(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    token = settings.metrics_token
    if token is None or not token.get_secret_value():
        raise NotFound()
    offered = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(token.get_secret_value().encode(), offered):
        raise AppError(
            401,
            "unauthorized",
            "Send the metrics token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body, content_type = exposition()
    return Response(body, media_type=content_type)
