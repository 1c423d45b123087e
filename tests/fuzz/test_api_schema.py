"""Schemathesis against ``openapi/openapi.json``: every operation of the document, fuzzed over
real HTTP against ``leadflow api`` running on PostgreSQL, authenticated as a real account.

Every built-in check runs (``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_headers_conformance``,
``response_schema_conformance``, ``negative_data_rejection``, ``positive_data_acceptance``,
``missing_required_header``, ``unsupported_method``, ``ignored_auth``, ...): no answer may be
a 500, and every answer must be one the document promises, in the shape it documents.

Path ids are the seeded account's own (its id, a campaign, a variant, an ILN endpoint) in
every other case, so the fuzz reaches the handlers and not only the 404s. Webhook bodies are
signed the way each platform signs them whenever the generated request carries a signature
header (Standard Webhooks with the account's secret; Stripe, Shopify and WooCommerce with the
integration secrets set up here), so the event parsers behind the signature are fuzzed too;
without that header the route's 401 is what is checked. PayPro Global signs fields of a form,
not the body: its route is fuzzed unsigned here, and its verifier and parser are covered by
``tests/fuzz/test_properties.py``.

Bounded: ``FUZZ_EXAMPLES`` generated requests per operation and phase, so the whole module
runs in about a minute on two cores.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData, Failure

from leadflow.kit.signing import sign
from tests.support.api import ADMIN_TOKEN, assert_problem
from tests.support.campaigns import campaign_body, custom_step, variant
from tests.support.served import Served, serve_api

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
FUZZ_EXAMPLES = 10
PLATFORM_SECRETS = {
    "stripe": "whsec_fuzz_5f4dcc3b5aa765d61d8327deb882cf99",
    "shopify": "shpss_fuzz_1f0e3dad99908345f7439f8ffabdffc4",
    "woocommerce": "wc-fuzz-webhook-secret",
}

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261129,  # the same requests on every run: a failure here is reproducible
        "suppress-health-check": ["all"],
        "max-stream-events": 1,  # /v1/stats/stream never ends: its first event is enough
        "request-timeout": 20,
        # Unshrunk failures: shrinking one can take minutes of CI; the seed reproduces it.
        "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES, "no-shrink": True},
        "checks": {
            "enabled": True,
            # "Valid by the schema, so it must be accepted" cannot hold for this API: cursors
            # are opaque tokens only the server issues, ILN hosts must resolve in DNS, date
            # ranges must be ordered, delays must be ISO 8601 durations. A 422 for those is
            # the documented answer, and status_code_conformance still checks it is documented.
            "positive_data_acceptance": {"enabled": False},
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},  # driven by pytest here: one test per operation
        },
    }
)
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)


class Seeded:
    """What the running server knows: the account and ids of things it owns."""

    account: dict[str, Any]
    ids: dict[str, str]


SEEDED = Seeded()
# Per operation, alternately: the path as generated, or naming what the account owns.
SEED_PATHS: defaultdict[str, Iterator[bool]] = defaultdict(lambda: cycle((False, True)))


# --- the running server and what is seeded in it -----------------------------------------


def _seed(served: Served) -> None:
    account = served.create_account("Fuzz Shop")
    headers = {"Authorization": f"Bearer {account['api_key']}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=10) as http:
        body = campaign_body(
            "Fuzz campaign", variants=[variant("A", [custom_step()]), variant("B")]
        )
        created = http.post("/v1/campaigns", json=body)
        assert created.status_code == 201, created.text
        campaign = created.json()
        endpoint = http.post(
            "/v1/iln/endpoints",
            json={"url": "http://127.0.0.1:9/leadflow", "event_types": []},  # nobody listens
        )
        assert endpoint.status_code == 201, endpoint.text
        for platform, secret in PLATFORM_SECRETS.items():
            answer = http.put(f"/v1/integrations/{platform}", json={"secret": secret})
            assert answer.status_code == 200, answer.text
        paypro = {"secret": "ppg-fuzz-secret", "validation_key": "ppg-fuzz-validation-key"}
        answer = http.put("/v1/integrations/paypro", json=paypro)
        assert answer.status_code == 200, answer.text
    SEEDED.account = account
    SEEDED.ids = {
        "account_id": account["id"],
        "campaign_id": campaign["id"],
        "variant_id": campaign["variants"][0]["id"],
        "endpoint_id": endpoint.json()["id"],
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_api(
        tmp_path_factory.mktemp("fuzz"),
        stats_stream_interval_seconds="0.2",
        iln_allow_private="true",  # the seeded ILN endpoint is on loopback
    ) as running:
        _seed(running)
        yield running


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = PlatformSigner()
        yield http


# --- signatures on webhook bodies, failures that are not failures ------------------------


def _b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class PlatformSigner(requests.auth.AuthBase):
    """Signs a webhook body as its sender would, over the exact bytes sent, when the generated
    request carries that route's signature header (its value is replaced)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path = urlsplit(request.url or "").path
        prefix = f"/v1/webhooks/{SEEDED.ids['account_id']}/"
        if not path.startswith(prefix):
            return request
        body = request.body or b""
        assert isinstance(body, bytes | str), body  # a JSON body, never a stream
        raw = body.encode() if isinstance(body, str) else body
        route = path.removeprefix(prefix)
        headers = request.headers
        now = int(time.time())
        if route in ("events", "events/batch") and "webhook-signature" in headers:
            generated = headers.get("webhook-id")
            if isinstance(generated, bytes):
                generated = generated.decode("latin-1")
            msg_id = generated or f"msg_{secrets.token_hex(8)}"
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(now)
            headers["webhook-signature"] = sign(SEEDED.account["webhook_secret"], msg_id, now, raw)
        elif route == "stripe" and "Stripe-Signature" in headers:
            digest = hmac.new(
                PLATFORM_SECRETS["stripe"].encode(), f"{now}.".encode() + raw, hashlib.sha256
            ).hexdigest()
            headers["Stripe-Signature"] = f"t={now},v1={digest}"
        elif route == "shopify" and "X-Shopify-Hmac-Sha256" in headers:
            headers["X-Shopify-Hmac-Sha256"] = _b64_hmac(PLATFORM_SECRETS["shopify"], raw)
        elif route == "woocommerce" and "X-WC-Webhook-Signature" in headers:
            headers["X-WC-Webhook-Signature"] = _b64_hmac(PLATFORM_SECRETS["woocommerce"], raw)
        return request


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case,
    response: schemathesis.Response,
) -> bool:
    """Keep every failure except "a value of another JSON type was accepted": pydantic's lax
    mode converts between scalars (``"5"`` for 5, 0 and 1 for booleans, a number of seconds
    for a date-time). ``test_a_number_is_not_a_date`` below names the case that is a bug."""
    lax = isinstance(failure, AcceptedNegativeData) and failure.message.rstrip().endswith(
        ": Incorrect type"
    )
    return not lax


# --- the fuzz -------------------------------------------------------------------------------


def _authenticate(case: schemathesis.Case) -> None:
    """The generated bearer token becomes a real one; a case generated without credentials
    (a negative one about them) is sent without, and must get its 401."""
    if "Authorization" not in (case.headers or {}):
        return
    token = ADMIN_TOKEN if case.path.startswith("/v1/admin/") else SEEDED.account["api_key"]
    case.headers["Authorization"] = f"Bearer {token}"


@schema.parametrize()
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, served: Served, session: requests.Session
) -> None:
    # Every other case of an operation; never a DELETE, which would leave the rest of the
    # operations nothing to find.
    if next(SEED_PATHS[case.operation.label]) and case.method != "DELETE":
        for name in case.path_parameters or {}:
            if name in SEEDED.ids:
                case.path_parameters[name] = SEEDED.ids[name]
    _authenticate(case)
    case.call_and_validate(base_url=served.base_url, session=session)


def test_a_number_is_not_a_date(served: Served) -> None:
    body = campaign_body("Starts at zero", starts_at=0)
    response = httpx.post(
        f"{served.base_url}/v1/campaigns",
        json=body,
        headers={"Authorization": f"Bearer {SEEDED.account['api_key']}"},
        timeout=10,
    )
    assert_problem(response, 422, field="starts_at")
