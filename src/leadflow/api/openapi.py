"""The OpenAPI document: every error is a Problem, every notification a documented webhook."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from leadflow.api.notifications import document_notifications
from leadflow.ingest.schemas import BatchEventIn, EventBatchIn, EventIn
from leadflow.kit.errors import FieldProblem, Problem, error_responses

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

# A JSON body that is not even text (not UTF-8) is refused by FastAPI before validation.
UNREADABLE_BODY = {
    **error_responses(400)[400],
    "description": "The body cannot be read as JSON (it is not UTF-8 text)",
}

WEBHOOKS = "/v1/webhooks/"

EXTRA_SCHEMAS = (Problem, FieldProblem, EventIn, BatchEventIn, EventBatchIn)


def install_openapi(app: FastAPI) -> None:
    document_notifications(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]


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
    for model in EXTRA_SCHEMAS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in model_schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = model_schema
    # FastAPI's own validation error schemas are never sent: every error is a Problem.
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_name, path in schema.get("paths", {}).items():
        for operation in path.values():
            _document_edge_errors(path_name, operation)
    app.openapi_schema = schema
    return schema


def _document_edge_errors(path: str, operation: dict[str, Any]) -> None:
    """The answers every operation can give before its handler runs (``api/middleware.py``
    and FastAPI's body parsing): a NUL in any query parameter is a 422 naming it; a JSON body
    of the merchant API past its limit is a 413, and one that is not UTF-8 a 400. Webhook
    intake reads its bodies itself and documents its own answers."""
    responses = operation["responses"]
    if _is_fastapi_422(operation) or "422" not in responses:
        responses.update({str(k): v for k, v in error_responses(422).items()})
    if "requestBody" in operation and not path.startswith(WEBHOOKS):
        responses["400"] = UNREADABLE_BODY
        responses.setdefault("413", error_responses(413)[413])


def _is_fastapi_422(operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("422", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")
