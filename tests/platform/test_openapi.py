"""The committed OpenAPI document is what the app serves, and it documents every route."""

from __future__ import annotations

import json
from pathlib import Path

from leadflow.cli import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.is_file(), "run `leadflow openapi` and commit openapi/openapi.json"
    assert COMMITTED.read_text(encoding="utf-8") == openapi_document(), (
        "openapi/openapi.json is stale: run `leadflow openapi` and commit the result"
    )


def test_every_operation_is_documented() -> None:
    spec = json.loads(openapi_document())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            assert operation.get("tags"), f"{where} has no tags"
            assert any(code[0] in "23" for code in operation["responses"]), where
            if path.startswith("/v1/"):
                errors = [c for c in operation["responses"] if c.startswith("4")]
                assert errors, f"{where} documents no error response"
                for code in errors:
                    content = operation["responses"][code]["content"]
                    assert "application/problem+json" in content, f"{where} {code}"
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"Problem", "EventIn", "EventBatchIn"} <= set(schemas)
    webhook = spec["paths"]["/v1/webhooks/{account_id}/events"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventIn"
    }


def test_operation_ids_are_the_hand_chosen_ones() -> None:
    """Generated clients name their methods after these: a framework default
    (``list_leads_route_v1_leads_get``) or a renamed one breaks every client."""
    from leadflow.api.openapi import OPERATION_IDS

    spec = json.loads(openapi_document())
    seen = {
        (method.upper(), path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert seen == OPERATION_IDS
    assert spec["paths"]["/v1/leads"]["get"]["operationId"] == "listLeads"
    assert spec["paths"]["/v1/campaigns"]["post"]["operationId"] == "createCampaign"
    hooks = {name: item["post"]["operationId"] for name, item in spec["webhooks"].items()}
    assert hooks["lead.followups_completed"] == "onLeadFollowupsCompleted"
    assert hooks["abtest.decided"] == "onAbTestDecided"


def test_notifications_document_what_a_receiver_may_answer() -> None:
    spec = json.loads(openapi_document())
    for name, item in spec["webhooks"].items():
        assert set(item["post"]["responses"]) == {"200", "410", "default"}, name


def test_fields_always_answered_are_required() -> None:
    """Responses are serialized whole, so a field with a default is still always there."""
    from leadflow.api import ROUTERS

    for router in ROUTERS:
        for route in router.routes:
            for flag in ("exclude_unset", "exclude_defaults", "exclude_none"):
                assert not getattr(route, f"response_model_{flag}", False), (route, flag)
    schemas = json.loads(openapi_document())["components"]["schemas"]
    assert "warnings" in schemas["CampaignOut"]["required"]
    assert "next_cursor" in schemas["LeadPage"]["required"]
    assert "min_delays" in schemas["AccountSettings"]["required"]
    # ... while request bodies keep their optional fields optional.
    assert "weight" not in schemas["VariantIn"].get("required", [])


def test_patch_fields_that_refuse_null_do_not_offer_it() -> None:
    schemas = json.loads(openapi_document())["components"]["schemas"]
    update = schemas["CampaignUpdate"]["properties"]
    for field in ("name", "source", "status", "products", "languages", "countries", "priority"):
        assert "anyOf" not in update[field] and update[field].get("type") != "null", field
    assert {"type": "null"} in update["description"]["anyOf"]  # null clears a description
    assert update["products"]["maxItems"] == 500
    endpoint = schemas["EndpointUpdate"]["properties"]
    for field in ("url", "event_types", "enabled"):
        assert "anyOf" not in endpoint[field], field


def test_every_answer_a_route_can_give_is_documented() -> None:
    spec = json.loads(openapi_document())
    preview = spec["paths"]["/v1/campaigns/{campaign_id}/preview"]["post"]["responses"]
    assert "409" in preview  # a campaign without follow-ups
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path != "/healthz":
                assert "503" in operation["responses"], f"{method} {path}"
    unavailable = spec["paths"]["/v1/leads"]["get"]["responses"]["503"]
    assert "Retry-After" in unavailable["headers"]
    stats = spec["paths"]["/v1/stats"]["get"]
    assert "404" in stats["responses"]
    bounds = {p["name"]: p["schema"] for p in stats["parameters"]}
    formats = {branch.get("format") for branch in bounds["from"]["anyOf"]}
    assert {"date", "date-time"} <= formats
