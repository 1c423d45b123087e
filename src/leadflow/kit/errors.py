"""Errors as values: one shape (RFC 9457 problem details) for every failure."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("leadflow.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `customer.email`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="URI reference naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`.")
    errors: list[FieldProblem] | None = None


class AppError(Exception):
    """A failure the caller can act on; rendered as a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        errors: Sequence[FieldProblem] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers) if headers is not None else None

    def to_problem(self) -> Problem:
        return Problem(
            type=f"/problems/{self.code.replace('_', '-')}",
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            code=self.code,
            errors=self.errors,
        )


class DomainError(AppError):
    """A named refusal, raised by services and rendered by the one error handler like any
    AppError. Subclasses fix the HTTP status, the problem code and a default detail."""

    http_status: ClassVar[int] = 409
    problem_code: ClassVar[str]
    default_detail: ClassVar[str]

    def __init__(
        self, detail: str | None = None, *, errors: Sequence[FieldProblem] | None = None
    ) -> None:
        super().__init__(
            self.http_status, self.problem_code, detail or self.default_detail, errors=errors
        )


class NotFound(DomainError):
    http_status = 404
    problem_code = "not_found"
    default_detail = "Not found."


def not_found(what: str) -> AppError:
    return NotFound(f"{what} not found")


def field_error(field: str, message: str, status: int = 422) -> AppError:
    return AppError(
        status,
        "validation_error",
        f"{field}: {message}",
        errors=[FieldProblem(field=field, message=message)],
    )


def loc_to_field(loc: Iterable[Any], *, strip_source: bool = True) -> str:
    """``("body", "products", 0, "unit_price")`` -> ``products[0].unit_price``."""
    parts = list(loc)
    if strip_source and parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def problems_from_validation(
    errors: Iterable[Mapping[str, Any]], *, prefix: str = "", strip_source: bool = True
) -> list[FieldProblem]:
    out = []
    for err in errors:
        if err.get("type") == "json_invalid":
            # FastAPI puts the character offset in ``loc`` ("body", 12): not a field name.
            error = (err.get("ctx") or {}).get("error")
            message = f"malformed JSON: {error}" if error else "malformed JSON"
            out.append(FieldProblem(field=prefix or "body", message=message))
            continue
        field = loc_to_field(err.get("loc", ()), strip_source=strip_source)
        if prefix:
            field = (
                prefix
                if field == "body"
                else f"{prefix}{'' if field.startswith('[') else '.'}{field}"
            )
        out.append(FieldProblem(field=field, message=_message(err)))
    return out


def validation_problem(problems: Sequence[FieldProblem]) -> AppError:
    """The 422 for invalid fields, each named in ``errors``."""
    return AppError(422, "validation_error", "The request has invalid fields.", errors=problems)


def validation_error(exc: ValidationError, *, prefix: str = "") -> AppError:
    problems = problems_from_validation(exc.errors(), prefix=prefix, strip_source=False)
    return validation_problem(problems)


def problem_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        error.to_problem().model_dump(exclude_none=True),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path. Starlette's own ``Allow`` names only the
    first matching route's, so ``GET`` and ``PUT`` declared separately would show ``GET``."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = problems_from_validation(exc.errors())
        return problem_response(validation_problem(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return problem_response(AppError(exc.status_code, code, detail, headers=headers))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(AppError(500, "internal_error", "An unexpected error occurred."))


def _problem_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    404: "Not found (or owned by another account)",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Invalid input; `errors` names each bad field",
    503: "Temporarily unavailable (the database, or template rendering); retry after "
    "`Retry-After` seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    return {s: _problem_response_doc(ERROR_DESCRIPTIONS[s]) for s in statuses}
