"""Field helpers for request schemas whose document must say exactly what the server does."""

from __future__ import annotations

from pydantic.json_schema import JsonDict


def omit_only(schema: JsonDict) -> None:
    """``json_schema_extra`` of a PATCH field that may be left out but not set to null: its
    ``None`` default only marks "omitted" (``model_fields_set``), and the service refuses an
    explicit null with a 422 naming the field. The document offers no null branch, and no
    null default, so generated clients never send one."""
    branches = schema.pop("anyOf", None)
    if schema.get("default", ...) is None:
        del schema["default"]
    if not isinstance(branches, list):
        return
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == 1 and isinstance(kept[0], dict):
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept
