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
