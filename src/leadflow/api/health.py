from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from leadflow.api.deps import DatabaseDep
from leadflow.kit.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    detail: str | None = None


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the database is reachable and migrated",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(db: DatabaseDep) -> Health | JSONResponse:
    try:
        revision = await current_revision(db.engine)
    except (SQLAlchemyError, OSError) as exc:
        return JSONResponse(
            {"status": "unavailable", "detail": f"database: {exc.__class__.__name__}"}, 503
        )
    if revision != head_revision():
        return JSONResponse(
            {
                "status": "unavailable",
                "detail": f"schema at {revision}, expected {head_revision()}",
            },
            503,
        )
    return Health(status="ok")
