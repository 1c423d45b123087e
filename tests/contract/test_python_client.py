"""A Python client generated from the committed ``openapi/openapi.json`` by
openapi-python-client: the generator skips nothing, the client imports, it has a function for
every operation, and it calls the app over real HTTP and parses each answer into its models.

A contract the generator cannot read whole (a ``$ref`` it cannot resolve, two schemas that
collapse into one model name) shows up here twice: as the generator's warnings, and as a call
whose documented answer the client cannot parse.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import subprocess
import sys
import typing
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from leadflow.kit.clock import ManualClock
from tests.support.api import ADMIN_TOKEN
from tests.support.events import lead_event, signed_headers

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PACKAGE = "leadflow_client"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# The first line of each problem the generator reports (it follows them with the offending
# part of the document).
GENERATOR_PROBLEM = re.compile(r"^(?:WARNING|ERROR|Unable to|Cannot|Could not)\b.*$", re.M)
# How each generated endpoint module names its request: `"method": "get", "url": "/v1/..."`.
ENDPOINT_REQUEST = re.compile(r'"method":\s*"(\w+)",\s*"url":\s*f?"([^"]+)"')


@dataclass(frozen=True)
class Generated:
    returncode: int
    output: str
    root: Path  # holds the package directory

    def problems(self) -> list[str]:
        return GENERATOR_PROBLEM.findall(self.output)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    root = tmp_path_factory.mktemp("python-client")
    config = root / "generator.json"
    # No post hooks: they would run ruff over the generated code (slow, and not the contract).
    config.write_text(json.dumps({"post_hooks": []}), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "openapi_python_client",
        "generate",
        "--path",
        str(OPENAPI),
        "--meta",
        "none",
        "--config",
        str(config),
        "--output-path",
        str(root / PACKAGE),
        "--fail-on-warning",
    ]
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    return Generated(proc.returncode, proc.stdout + proc.stderr, root)


class ClientApi:
    """The generated package, and its endpoint module for each (method, path)."""

    def __init__(self, package: ModuleType, directory: Path) -> None:
        self.package = package
        self.endpoints: dict[tuple[str, str], str] = {}
        for source in sorted((directory / "api").glob("*/*.py")):
            found = ENDPOINT_REQUEST.search(source.read_text(encoding="utf-8"))
            if found is None:
                continue
            module = f"{PACKAGE}.api.{source.parent.name}.{source.stem}"
            self.endpoints[(found[1].lower(), found[2])] = module

    def endpoint(self, method: str, path: str) -> ModuleType:
        module = self.endpoints.get((method, path))
        assert module is not None, f"the generated client has no function for {method} {path}"
        return importlib.import_module(module)

    def client(self, token: str | None, base_url: str, **httpx_args: Any) -> Any:
        """A client of the package, authenticated with ``token`` when given; it raises on any
        status code the document does not list for the operation."""
        if token is None:
            return self.package.Client(
                base_url=base_url, raise_on_unexpected_status=True, httpx_args=httpx_args
            )
        return self.package.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True
        )


@pytest.fixture(scope="module")
def client_api(generated: Generated) -> Iterator[ClientApi]:
    directory = generated.root / PACKAGE
    assert (directory / "__init__.py").is_file(), f"no client was generated:\n{generated.output}"
    sys.path.insert(0, str(generated.root))
    try:
        yield ClientApi(importlib.import_module(PACKAGE), directory)
    finally:
        sys.path.remove(str(generated.root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def documented_operations() -> set[tuple[str, str]]:
    spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def test_generator_skips_nothing(generated: Generated) -> None:
    problems = generated.problems()
    assert generated.returncode == 0 and not problems, (
        "openapi-python-client could not use all of openapi/openapi.json "
        f"(exit {generated.returncode}):\n- "
        + "\n- ".join(problems)
        + "\n\n"
        + generated.output[:8000]
    )


def test_every_operation_has_a_function_that_imports(client_api: ClientApi) -> None:
    assert set(client_api.endpoints) == documented_operations()
    for method, path in sorted(client_api.endpoints):
        module = client_api.endpoint(method, path)
        assert callable(module.asyncio_detailed) and callable(module.sync_detailed), path


async def call(
    api: ClientApi, client: Any, method: str, path: str, status: int, **arguments: Any
) -> Any:
    """Call ``method path`` through its generated function (a dict ``body`` is first read
    into the function's body model); the answer must be ``status`` and parse into a model."""
    module = api.endpoint(method, path)
    if isinstance(arguments.get("body"), dict):
        body_model = typing.get_type_hints(module._get_kwargs)["body"]
        arguments["body"] = body_model.from_dict(arguments["body"])
    response = await module.asyncio_detailed(client=client, **arguments)
    where = f"{method.upper()} {path}"
    assert response.status_code == status, f"{where}: {response.status_code} {response.content!r}"
    assert response.parsed is not None, f"{where}: the client could not parse {response.content!r}"
    assert type(response.parsed).__name__ != "Problem", f"{where}: {response.content!r}"
    return response.parsed


def documented_fields_only(model: Any) -> None:
    """The server sent no member that the document leaves out (the generated models keep
    those apart, in ``additional_properties``)."""
    extra = getattr(model, "additional_properties", {})
    assert extra == {}, f"{type(model).__name__}: undocumented members {sorted(extra)}"


def aware(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.utcoffset() is not None


def signing(
    secret: str, clock: ManualClock
) -> Callable[[httpx.Request], Coroutine[Any, Any, None]]:
    """An httpx request hook that signs each webhook the way a platform does (over the exact
    bytes the generated client sends)."""

    async def sign(request: httpx.Request) -> None:
        timestamp = int(clock.now().timestamp())
        request.headers.update(signed_headers(secret, request.content, timestamp=timestamp))

    return sign


async def test_the_generated_client_calls_the_api(
    client_api: ClientApi, live_url: str, clock: ManualClock
) -> None:
    api = client_api
    async with api.client(ADMIN_TOKEN, live_url) as admin:
        account = await call(
            api, admin, "post", "/v1/admin/accounts", 201, body={"name": "Acme Shop"}
        )
    documented_fields_only(account)
    assert account.api_key.startswith("lf_") and account.webhook_secret.startswith("whsec_")
    assert isinstance(account.id, str) and account.name == "Acme Shop"

    hook = signing(account.webhook_secret, clock)
    async with api.client(None, live_url, event_hooks={"request": [hook]}) as platform:
        ingested = await call(
            api,
            platform,
            "post",
            "/v1/webhooks/{account_id}/events",
            200,
            account_id=account.id,
            body=lead_event(reference="chk_contract"),
        )
    documented_fields_only(ingested)
    assert ingested.duplicate is False and isinstance(ingested.lead_id, str)

    async with api.client(account.api_key, live_url) as merchant:
        await contract_calls(api, merchant, ingested.lead_id)


async def contract_calls(api: ClientApi, merchant: Any, lead_id: str) -> None:
    body = {
        "name": "Cart recovery A/B",
        "source": "abandoned_checkout",
        "status": "active",
        "variants": [
            {
                "name": "A",
                "weight": 1,
                "steps": [{"delay": "PT2H", "template": "abandoned_checkout/1"}],
            },
            {
                "name": "B",
                "weight": 1,
                "steps": [{"delay": "PT4H", "template": "abandoned_checkout/1"}],
            },
        ],
        "ab_test": {"criterion": "conversions", "threshold": 10, "keep_best": True},
    }
    campaign = await call(api, merchant, "post", "/v1/campaigns", 201, body=body)
    documented_fields_only(campaign)
    assert (campaign.name, campaign.status, campaign.source) == (
        "Cart recovery A/B",
        "active",
        "abandoned_checkout",
    )
    assert aware(campaign.created_at) and aware(campaign.updated_at)
    assert [v.name for v in campaign.variants] == ["A", "B"]
    assert campaign.ab_test.criterion == "conversions" and campaign.ab_test.state == "running"

    page = await call(api, merchant, "get", "/v1/campaigns", 200)
    documented_fields_only(page)
    assert [c.id for c in page.items] == [campaign.id] and page.next_cursor is None

    shown = await call(
        api, merchant, "get", "/v1/campaigns/{campaign_id}", 200, campaign_id=campaign.id
    )
    documented_fields_only(shown)
    assert shown.id == campaign.id and shown.created_at == campaign.created_at

    results = await call(
        api, merchant, "get", "/v1/campaigns/{campaign_id}/ab-test", 200, campaign_id=campaign.id
    )
    documented_fields_only(results)
    assert (results.campaign_id, results.state, results.winner_variant_id) == (
        campaign.id,
        "running",
        None,
    )
    assert [v.name for v in results.variants] == ["A", "B"]
    assert all(isinstance(v.leads_assigned, int) for v in results.variants)
    assert results.settings.criterion == "conversions" and results.settings.keep_best is True

    leads = await call(api, merchant, "get", "/v1/leads", 200, limit=10)
    documented_fields_only(leads)
    assert [lead.id for lead in leads.items] == [lead_id] and leads.next_cursor is None
    lead = leads.items[0]
    documented_fields_only(lead)
    assert (lead.reference, lead.status, lead.source_type) == (
        "chk_contract",
        "open",
        "abandoned_checkout",
    )
    assert lead.customer.email == "chk_contract@example.com"
    assert (lead.amount, lead.currency) == ("49.00", "EUR")
    assert aware(lead.captured_at) and lead.converted_at is None

    stats = await call(api, merchant, "get", "/v1/stats", 200, campaign_id=campaign.id)
    documented_fields_only(stats)
    assert aware(stats.from_) and aware(stats.to) and stats.from_ < stats.to
    assert stats.granularity == "day"
    assert isinstance(stats.overall.followups_sent, int)
    assert isinstance(stats.overall.targeted_leads, int)
    assert [figures.campaign_id for figures in stats.campaigns] in ([], [campaign.id])

    # An error answer parses into its documented problem model too.
    get_campaign = api.endpoint("get", "/v1/campaigns/{campaign_id}")
    missing = await get_campaign.asyncio_detailed(client=merchant, campaign_id="cmp_missing")
    assert missing.status_code == 404, missing.content
    assert type(missing.parsed).__name__ == "Problem", missing.content
    assert (missing.parsed.status, missing.parsed.code) == (404, "not_found")
