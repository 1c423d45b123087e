"""The OpenAPI document: every error is a Problem, every notification a documented webhook."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from leadflow.api.notifications import document_notifications
from leadflow.ingest.schemas import BatchEventIn, EventBatchIn, EventIn
from leadflow.kit.errors import PROBLEM_MEDIA_TYPE, FieldProblem, Problem, error_responses

DESCRIPTION = """\
leadflow turns ecommerce webhooks (abandoned checkouts, unfinished orders, trials,
renewals) into leads and follows them up.

* Inbound webhooks are signed with the account's `whsec_…` secret using
  [Standard Webhooks](https://www.standardwebhooks.com/).
* The merchant API takes `Authorization: Bearer <api key>`, or the dashboard's session
  cookie `lf_session` (`POST /v1/session`); with the cookie, POST, PUT, PATCH and DELETE
  also need the `X-CSRF-Token` header the session answered.
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

# Hand-chosen, stable operationIds: the method names of every generated client. A new route
# without an entry here fails the document's generation (and so the drift test).
OPERATION_IDS = {
    ("GET", "/healthz"): "getHealth",
    ("GET", "/readyz"): "getReadiness",
    ("GET", "/c/{token}"): "followTrackedLink",
    ("GET", "/u/{token}"): "getUnsubscribePage",
    ("POST", "/u/{token}"): "unsubscribe",
    ("POST", "/v1/admin/accounts"): "createAccount",
    ("POST", "/v1/session"): "createSession",
    ("GET", "/v1/session"): "getSession",
    ("DELETE", "/v1/session"): "deleteSession",
    ("POST", "/v1/setup"): "completeSetup",
    ("GET", "/v1/settings"): "getSettings",
    ("PUT", "/v1/settings"): "updateSettings",
    ("GET", "/v1/api-keys"): "listApiKeys",
    ("POST", "/v1/api-keys"): "createApiKey",
    ("DELETE", "/v1/api-keys/{key_id}"): "revokeApiKey",
    ("POST", "/v1/webhook-secret/rotate"): "rotateWebhookSecret",
    ("GET", "/v1/lead-groups"): "listLeadGroups",
    ("PATCH", "/v1/lead-groups/{key}"): "updateLeadGroup",
    ("GET", "/v1/leads"): "listLeads",
    ("GET", "/v1/leads/{lead_id}"): "getLead",
    ("GET", "/v1/campaigns"): "listCampaigns",
    ("POST", "/v1/campaigns"): "createCampaign",
    ("GET", "/v1/campaigns/{campaign_id}"): "getCampaign",
    ("PATCH", "/v1/campaigns/{campaign_id}"): "updateCampaign",
    ("DELETE", "/v1/campaigns/{campaign_id}"): "archiveCampaign",
    ("POST", "/v1/campaigns/{campaign_id}/variants"): "createVariant",
    ("PATCH", "/v1/campaigns/{campaign_id}/variants/{variant_id}"): "updateVariant",
    ("DELETE", "/v1/campaigns/{campaign_id}/variants/{variant_id}"): "deleteVariant",
    ("POST", "/v1/campaigns/{campaign_id}/preview"): "previewFollowup",
    ("POST", "/v1/campaigns/{campaign_id}/backfill"): "startBackfill",
    ("GET", "/v1/campaigns/{campaign_id}/backfills/{backfill_id}"): "getBackfill",
    ("GET", "/v1/campaigns/{campaign_id}/ab-test"): "getAbTest",
    ("POST", "/v1/campaigns/{campaign_id}/ab-test/decide"): "decideAbTest",
    ("GET", "/v1/campaigns/{campaign_id}/stats"): "getCampaignStats",
    ("GET", "/v1/templates"): "listTemplates",
    ("GET", "/v1/stats"): "getStats",
    ("GET", "/v1/stats/stream"): "streamStats",
    ("GET", "/v1/suppressions"): "listSuppressions",
    ("POST", "/v1/suppressions"): "addSuppression",
    ("DELETE", "/v1/suppressions/{email}"): "removeSuppression",
    ("GET", "/v1/iln/endpoints"): "listIlnEndpoints",
    ("POST", "/v1/iln/endpoints"): "createIlnEndpoint",
    ("GET", "/v1/iln/endpoints/{endpoint_id}"): "getIlnEndpoint",
    ("PATCH", "/v1/iln/endpoints/{endpoint_id}"): "updateIlnEndpoint",
    ("DELETE", "/v1/iln/endpoints/{endpoint_id}"): "deleteIlnEndpoint",
    ("POST", "/v1/iln/endpoints/{endpoint_id}/rotate-secret"): "rotateIlnEndpointSecret",
    ("POST", "/v1/iln/endpoints/{endpoint_id}/test"): "testIlnEndpoint",
    ("GET", "/v1/iln/deliveries"): "listIlnDeliveries",
    ("POST", "/v1/iln/deliveries/{delivery_id}/redeliver"): "redeliverIlnDelivery",
    ("GET", "/v1/integrations"): "listIntegrations",
    ("PUT", "/v1/integrations/{platform}"): "configureIntegration",
    ("DELETE", "/v1/integrations/{platform}"): "deleteIntegration",
    ("POST", "/v1/webhooks/{account_id}/events"): "receiveEvent",
    ("POST", "/v1/webhooks/{account_id}/events/batch"): "receiveEventBatch",
    ("POST", "/v1/webhooks/{account_id}/stripe"): "receiveStripeWebhook",
    ("POST", "/v1/webhooks/{account_id}/shopify"): "receiveShopifyWebhook",
    ("POST", "/v1/webhooks/{account_id}/woocommerce"): "receiveWooCommerceWebhook",
    ("POST", "/v1/webhooks/{account_id}/paypro"): "receivePayProWebhook",
    # capture (opt-in forms)
    ("GET", "/v1/capture/settings"): "getCaptureSettings",
    ("PUT", "/v1/capture/settings"): "updateCaptureSettings",
    ("POST", "/v1/capture/settings/rotate-key"): "rotatePublishableKey",
    ("GET", "/v1/capture/confirm/{token}"): "confirmOptIn",
    ("GET", "/v1/capture/{public_key}/form.js"): "getCaptureForm",
    ("OPTIONS", "/v1/capture/{public_key}"): "captureLeadPreflight",
    ("POST", "/v1/capture/{public_key}"): "captureLead",
    # bounces and complaints
    ("POST", "/v1/webhooks/{account_id}/postmark"): "receivePostmarkWebhook",
    ("POST", "/v1/webhooks/{account_id}/sendgrid"): "receiveSendGridWebhook",
    ("POST", "/v1/webhooks/{account_id}/mailgun"): "receiveMailgunWebhook",
    ("POST", "/v1/webhooks/{account_id}/ses"): "receiveSesWebhook",
}

# Answers every operation can give besides its own (not documented on liveness, which
# touches nothing): the database or a render process is away for a moment.
UNAVAILABLE = {
    **error_responses(503)[503],
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
}
NO_DEPENDENCIES = {"/healthz", "/readyz"}  # readyz documents its own 503 (a Health body)

# The session cookie's security scheme (api/deps.py): with it, a state-changing request needs
# the session's CSRF token.
SESSION_SCHEME = "SessionCookie"
SAFE_METHODS = {"get", "head", "options"}
CSRF_FAILED = {
    "description": "Signed in by the session cookie without the session's `X-CSRF-Token` "
    "header (`csrf_failed`)",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}

NOTIFICATION_ANSWERS = {
    "200": {"description": "Any 2xx acknowledges the notification."},
    "410": {"description": "Gone: leadflow disables the endpoint and stops sending to it."},
    "default": {
        "description": "Any other answer, or none within the timeout: retried on the "
        "schedule, with the same `webhook-id`."
    },
}


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
        for method, operation in path.items():
            operation["operationId"] = OPERATION_IDS[(method.upper(), path_name)]
            _document_edge_errors(path_name, method, operation)
    for event_type, item in schema.get("webhooks", {}).items():
        for operation in item.values():
            operation["operationId"] = _notification_operation_id(event_type)
            operation["responses"] = NOTIFICATION_ANSWERS
    _name_by_title(schema)
    _require_what_is_always_answered(schema)
    app.openapi_schema = schema
    return schema


def _notification_operation_id(event_type: str) -> str:
    """``lead.followups_completed`` → ``onLeadFollowupsCompleted``."""
    words = event_type.replace(".", "_").split("_")
    return "on" + "".join(word.capitalize() for word in words).replace("Abtest", "AbTest")


def _require_what_is_always_answered(schema: dict[str, Any]) -> None:
    """Responses are serialized whole (no route leaves unset or null fields out), so every
    property of a schema that only responses use is always present: required, and nullable
    where its type says so. Problem documents leave out what they lack (``detail``,
    ``errors``), and schemas that requests use keep their optional fields, as do the
    notification payloads (their schemas are what receivers must accept)."""
    components = schema["components"]["schemas"]
    requested: set[str] = set()
    answered: set[str] = set()
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            _collect_refs(operation.get("requestBody", {}), components, requested)
            _collect_refs(operation.get("parameters", []), components, requested)
            _collect_refs(operation.get("responses", {}), components, answered)
    for name in sorted(answered - requested - {"Problem", "FieldProblem"}):
        properties = components[name].get("properties")
        if properties:
            components[name]["required"] = list(properties)


def _name_by_title(schema: dict[str, Any]) -> None:
    """Each schema under its model's name: pydantic keys a generic model by its parameters
    (``Page_CampaignOut_``); its title is the name it chose (``CampaignPage``)."""
    components = schema["components"]["schemas"]
    renames = {
        name: sub["title"]
        for name, sub in components.items()
        if sub.get("title", name) != name and sub["title"] not in components
    }
    if not renames:
        return
    schema["components"]["schemas"] = {renames.get(k, k): v for k, v in components.items()}
    prefix = "#/components/schemas/"
    _rewrite_refs(schema, {prefix + old: prefix + new for old, new in renames.items()})


def _rewrite_refs(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in refs:
            node["$ref"] = refs[ref]
        for value in node.values():
            _rewrite_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, refs)


def _collect_refs(node: Any, components: dict[str, Any], found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in found:
                found.add(name)
                _collect_refs(components.get(name, {}), components, found)
        for key, value in node.items():
            if key != "$ref":
                _collect_refs(value, components, found)
    elif isinstance(node, list):
        for value in node:
            _collect_refs(value, components, found)


def _document_edge_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    """The answers every operation can give before its handler runs (``api/middleware.py``,
    FastAPI's body parsing, the request's credentials): a NUL in any query parameter is a 422
    naming it; a JSON body of the merchant API past its limit is a 413, and one that is not
    UTF-8 a 400; a state-changing request signed in by the session cookie without its CSRF
    token is a 403. Webhook intake reads its bodies itself and documents its own answers."""
    responses = operation["responses"]
    if _is_fastapi_422(operation) or "422" not in responses:
        responses.update({str(k): v for k, v in error_responses(422).items()})
    if "requestBody" in operation and not path.startswith(WEBHOOKS):
        responses["400"] = UNREADABLE_BODY
        responses.setdefault("413", error_responses(413)[413])
    if path not in NO_DEPENDENCIES:
        responses.setdefault("503", UNAVAILABLE)
    by_cookie = any(SESSION_SCHEME in option for option in operation.get("security", []))
    if by_cookie and method not in SAFE_METHODS:
        responses.setdefault("403", CSRF_FAILED)


def _is_fastapi_422(operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("422", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.endswith("/HTTPValidationError")
