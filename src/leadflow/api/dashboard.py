"""The merchant's dashboard: static pages shipped inside the package, built only on the public
JSON API. Served as files with no build step; nothing here reads the database."""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from leadflow.kit.errors import AppError

router = APIRouter(include_in_schema=False)

STATIC_ROOT = Path(__file__).parent / "static" / "dashboard"

# No inline script anywhere; styles inline only so an email preview (srcdoc) keeps its own styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_COMMON = {
    "X-Content-Type-Options": "nosniff",
    # The login and setup tokens ride in the fragment, which is never sent; no referrer either.
    "Referrer-Policy": "no-referrer",
}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}


@lru_cache(maxsize=128)
def _load(relative: str) -> tuple[bytes, str, str]:
    """The file's bytes, media type and ETag, read once per process: the files only change with
    the package."""
    root = STATIC_ROOT.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise FileNotFoundError(relative)
    content = path.read_bytes()
    media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    return content, media_type or "application/octet-stream", etag


def _file(request: Request, relative: str, headers: dict[str, str]) -> Response:
    try:
        content, media_type, etag = _load(relative)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise AppError(404, "not_found", "No such dashboard file.") from exc
    # Files are not content-hashed (no build step), so browsers revalidate every time; the ETag
    # makes that a 304 without a body.
    headers = {**_COMMON, **headers, "ETag": etag, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    return Response(content, media_type=media_type, headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard")
async def dashboard_without_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard/")
async def dashboard(request: Request) -> Response:
    return _file(
        request,
        "index.html",
        {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"},
    )


@router.get("/dashboard/static/{relative:path}")
async def dashboard_file(relative: str, request: Request) -> Response:
    if relative == "index.html":
        raise AppError(404, "not_found", "No such dashboard file.")
    return _file(request, relative, {})
