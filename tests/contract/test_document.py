"""What client generators need from the committed ``openapi/openapi.json`` beyond being valid:
every ``$ref`` resolves (``webhooks`` included), one name per schema whatever a generator does
to it, a camelCase operationId on every operation, and a schema behind every error answer.

(``tests/platform/test_openapi.py`` checks that the document is the app's, and that each route
has a summary, tags and problem+json errors.)
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CAMEL_CASE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")
# FastAPI's names for one model seen as a request and as a response; generators drop the
# suffix (or the title lacks it) and then hold two models under one name.
IO_SUFFIX = re.compile(r"-(?:Input|Output)$")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return document


def walk(node: Any, pointer: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in the document with its JSON pointer."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def resolve(spec: dict[str, Any], ref: str) -> Any:
    """The target of a local ``$ref`` (RFC 6901), or None."""
    if not ref.startswith("#/"):
        return None
    node: Any = spec
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``"GET /v1/leads"`` or ``"webhook POST lead.captured"``, operation) for each one."""
    for section, prefix in (("paths", ""), ("webhooks", "webhook ")):
        for name, item in spec.get(section, {}).items():
            for method in METHODS:
                if method in item:
                    yield f"{prefix}{method.upper()} {name}", item[method]


def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    broken = [
        f"{pointer}: {node['$ref']}"
        for pointer, node in walk(spec)
        if isinstance(node.get("$ref"), str) and resolve(spec, node["$ref"]) is None
    ]
    assert not broken, "$ref that resolve to nothing (or outside the document):\n" + "\n".join(
        broken
    )


def test_one_name_per_schema(spec: dict[str, Any]) -> None:
    """Generators name a model by its component name (openapi-typescript) or by its title
    (openapi-python-client), and turn it into an identifier: both must be the same name, and
    no other schema may come out under it (``AbTestSettings-Input`` and ``-Output``)."""
    schemas: dict[str, Any] = spec["components"]["schemas"]
    retitled = [
        f"{name} (title {schema['title']!r})"
        for name, schema in schemas.items()
        if "title" in schema and schema["title"] != name
    ]
    claimed: dict[str, set[str]] = defaultdict(set)
    for name, schema in schemas.items():
        for label in (name, schema.get("title", name)):
            claimed[re.sub(r"[^0-9a-z]", "", IO_SUFFIX.sub("", label).casefold())].add(name)
    clashes = [" / ".join(sorted(names)) for names in claimed.values() if len(names) > 1]
    assert not clashes and not retitled, (
        "schemas that generators would merge into one model:\n"
        + "\n".join(clashes)
        + "\nschemas whose title is not their name:\n"
        + "\n".join(retitled)
    )


def test_operation_ids_are_camel_case_and_unique(spec: dict[str, Any]) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    bad = []
    for where, operation in operations(spec):
        operation_id = operation.get("operationId")
        if not isinstance(operation_id, str) or not CAMEL_CASE.fullmatch(operation_id):
            bad.append(f"{where}: {operation_id!r}")
        else:
            seen[operation_id].append(where)
    repeated = [f"{name}: {', '.join(places)}" for name, places in seen.items() if len(places) > 1]
    assert not bad, "operations without a camelCase operationId:\n" + "\n".join(bad)
    assert not repeated, "operationIds used more than once:\n" + "\n".join(repeated)


def test_error_answers_have_a_schema(spec: dict[str, Any]) -> None:
    """Every error the API documents says which schema its body has, and that schema exists.
    The responses of a webhook are the receiver's answers: a body is optional there, but one
    that is documented must have an existing schema too."""
    missing = []
    for where, operation in operations(spec):
        receiver = where.startswith("webhook ")
        for code, response in operation.get("responses", {}).items():
            if code[0] not in "45" and code != "default":
                continue
            if "$ref" in response:
                response = resolve(spec, response["$ref"]) or {}
            content = response.get("content") or {}
            if not content and not receiver:
                missing.append(f"{where} {code}: no body documented")
            for media_type, body in content.items():
                if media_type.startswith("text/") and body.get("schema") == {"type": "string"}:
                    continue  # a page for a person (an expired link), not data for a client
                ref = body.get("schema", {}).get("$ref")
                if not (
                    isinstance(ref, str)
                    and ref.startswith("#/components/schemas/")
                    and resolve(spec, ref) is not None
                ):
                    missing.append(f"{where} {code} {media_type}: schema {body.get('schema')}")
    assert not missing, "error answers without an existing schema:\n" + "\n".join(missing)
