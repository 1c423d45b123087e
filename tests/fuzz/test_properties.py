"""Properties of the code that meets untrusted bytes first: the signature verifiers (Standard
Webhooks, Stripe, Shopify, WooCommerce, PayPro Global), the event parsers and merchant
template validation.

Whatever the input, each raises nothing but its documented errors: ``AppError`` (a problem
with a 4xx status: ``InvalidSignature``, ``TimestampOutOfTolerance``, ``MalformedBody``, a
field error) from verifiers and platform parsers, pydantic's ``ValidationError`` from
``EventIn``, ``TemplateProblem`` from template validation. Anything else would be a 500.
And a body signed correctly verifies, while one flipped bit (of the body or of the signature)
does not.

Pure functions, no database: a few hundred examples each still run in seconds.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from pydantic import ValidationError
from starlette.datastructures import Headers

from leadflow.ingest.errors import InvalidSignature
from leadflow.ingest.schemas import EventBatchIn, EventIn
from leadflow.ingest.verify import parse_json, verify_standard_webhook
from leadflow.integrations.formats import Credentials, paypro, shopify, stripe, woocommerce
from leadflow.integrations.formats.common import form_fields
from leadflow.kit.errors import AppError
from leadflow.kit.signing import sign
from leadflow.templates.render import TemplateProblem, check_custom_template

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
TOLERANCE = dt.timedelta(minutes=5)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Parsers get bigger inputs, so fewer of them.
PARSERS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ---------------------------------------------------------------------------

# What travels in an HTTP header: Latin-1 text (that is how the server decodes it).
header_text = st.text(st.characters(max_codepoint=0xFF), max_size=80)
secret_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
message_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=1, max_size=255
)
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "0",
    "-1",
    "1e999",
    "NaN",
    "Infinity",
    "-0",
    "9" * 40,
    "\ud800",
    "2026-01-15T11:00:00Z",
    "2026-01-15T11:00:00",
    "2026-13-45T99:99:99Z",
    "0000-00-00",
    "jane@example.com",
    "not an email",
    "a@b",
    "https://shop.example.com/x",
    "http://[::1",
    "DE",
    "de-DE",
    "zz",
    "EUR",
    "XXX",
    "JPY",
    "Europe/Berlin",
    "Mars/Olympus",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(ODD_STRINGS)
)


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects that use the names a parser looks for, holding anything at all."""
    names = st.sampled_from(keys) | st.text(max_size=8)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=6),
        max_leaves=30,
    )
    return st.dictionaries(names, values, max_size=10)


def json_bytes(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """``values`` as JSON (NaN and Infinity included, as Python writes them), now and then
    cut short or not JSON at all."""
    encoded = values.map(lambda v: json.dumps(v, allow_nan=True).encode())
    cut = st.tuples(encoded, st.integers(min_value=0, max_value=200)).map(lambda t: t[0][: t[1]])
    return encoded | cut | st.binary(max_size=200)


def words(text: str) -> list[str]:
    return text.split()


def flip_bit(data: bytes, position: int) -> bytes:
    index = position % (len(data) * 8)
    flipped = bytearray(data)
    flipped[index // 8] ^= 1 << (index % 8)
    return bytes(flipped)


def flip_char(text: str, position: int) -> str:
    """``text`` with one character changed to another of the same alphabet (hex, base64)."""
    index = position % len(text)
    replacement = "1" if text[index] != "1" else "2"
    return text[:index] + replacement + text[index + 1 :]


STRIPE_KEYS = words("""
id type created data object customer customer_email customer_details customer_name email
name address country locale currency amount_total amount_paid line_items lines items
price unit_amount quantity product description nickname recovery url after_expiration
subscription subscription_details trial_end period_end next_payment_attempt
hosted_invoice_url parent pricing price_details customer_address
""")
STRIPE_TYPES = [*stripe.USED_TYPES, *stripe.LEARNING_TYPES, "charge.succeeded", ""]
SHOPIFY_KEYS = words("""
id token checkout_token email contact_email customer first_name last_name
billing_address shipping_address country_code customer_locale currency total_price
line_items title variant_title sku product_id variant_id quantity price
abandoned_checkout_url created_at updated_at completed_at processed_at name
""")
SHOPIFY_TOPICS = [*shopify.CHECKOUT_TOPICS, *shopify.ORDER_TOPICS, "products/update"]
WC_KEYS = words("""
id number status currency total billing email first_name last_name country line_items
name sku product_id variation_id quantity price payment_url date_created_gmt
date_modified_gmt date_paid_gmt
""")
WC_TOPICS = [*woocommerce.ORDER_TOPICS, "product.updated"]
PAYPRO_FIELDS = words("""
ORDER_ID IPN_TYPE_NAME IPN_TYPE_ID HASH SIGNATURE TEST_MODE ORDER_STATUS
ORDER_TOTAL_AMOUNT ORDER_CURRENCY_CODE CUSTOMER_EMAIL CUSTOMER_FIRST_NAME
CUSTOMER_LAST_NAME CUSTOMER_COUNTRY_CODE CUSTOMER_LANGUAGE_CODE IS_ON_TRIAL_PERIOD
TRIAL_PERIOD_TILL SUBSCRIPTION_ID PRODUCT_ID PRODUCT_QUANTITY ORDER_ITEM_NAME
ORDER_ITEM_SKU ORDER_ITEM_UNIT_PRICE
""")
PAYPRO_IPN_TYPES = [
    *words("""OrderCharged OrderRefunded SubscriptionChargeSucceed SubscriptionChargeFailed
    SubscriptionRenewed SubscriptionTerminated TrialStarted"""),
    "",
]
# Fields as ``form_fields`` hands them over: decoded from UTF-8, so never a lone surrogate.
form_text = st.text(st.characters(codec="utf-8"), max_size=30)
paypro_forms = st.dictionaries(
    st.sampled_from(PAYPRO_FIELDS) | form_text,
    st.sampled_from(PAYPRO_IPN_TYPES)
    | st.sampled_from([s for s in ODD_STRINGS if s != "\ud800"])
    | form_text,
    max_size=14,
)
EVENT_KEYS = words("""
type occurred_at reference customer email first_name last_name language country timezone
products id name quantity unit_price amount currency recovery_url attributes
discount_code events
""")
EVENT_TYPES = words("""checkout.abandoned order.unfinished order.completed trial.started
subscription.renewal_due lead.opt_in unknown.type""")


def platform_headers(**values: str | None) -> Headers:
    """Request headers as the server sees them (case-insensitive), without the absent ones."""
    return Headers(headers={k: v for k, v in values.items() if v is not None})


def random_secret(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


# --- Standard Webhooks -----------------------------------------------------------------------


def _overflows_a_float(timestamp: str | None) -> bool:
    """A timestamp ``int`` takes but a float cannot hold: ``test_a_huge_webhook_timestamp``."""
    try:
        return abs(int(timestamp or "")) > 10**300
    except ValueError:
        return False


@FAST
@given(
    secret=st.binary(min_size=1, max_size=64),
    msg_id=st.none() | header_text,
    timestamp=st.none() | header_text | st.integers().map(str),
    signature=st.none() | header_text,
    body=st.binary(max_size=300),
)
def test_standard_webhooks_refuse_anything_with_invalid_signature_only(
    secret, msg_id, timestamp, signature, body
):
    assume(not _overflows_a_float(timestamp))
    try:
        verify_standard_webhook(
            secrets=[random_secret(secret)],
            msg_id=msg_id,
            timestamp=timestamp,
            signature=signature,
            body=body,
            now=NOW,
            tolerance=TOLERANCE,
        )
    except AppError as exc:
        assert 400 <= exc.status < 500
    else:  # it cannot have been accepted without knowing the secret
        pytest.fail(f"accepted a forged signature {signature!r}")


@FAST
@given(
    secret=st.binary(min_size=1, max_size=64),
    msg_id=message_ids,
    skew=st.integers(min_value=-300, max_value=300),
    body=st.binary(max_size=500),
    position=st.integers(min_value=0),
)
def test_a_standard_webhook_signed_right_verifies_and_one_bit_off_does_not(
    secret, msg_id, skew, body, position
):
    whsec = random_secret(secret)
    timestamp = int(NOW.timestamp()) + skew
    signature = sign(whsec, msg_id, timestamp, body)

    def verify(sig: str, payload: bytes) -> None:
        verify_standard_webhook(
            secrets=[whsec],
            msg_id=msg_id,
            timestamp=str(timestamp),
            signature=sig,
            body=payload,
            now=NOW,
            tolerance=TOLERANCE,
        )

    verify(signature, body)
    verify(f"v1,bm90IHRoaXMgb25l {signature}", body)  # several offered: one matching is enough
    with pytest.raises(InvalidSignature):
        verify(signature, flip_bit(body or b"\x00", position))
    digest = base64.b64decode(signature.removeprefix("v1,"))
    forged = "v1," + base64.b64encode(flip_bit(digest, position)).decode()
    with pytest.raises(InvalidSignature):
        verify(forged, body)


def test_a_huge_webhook_timestamp_is_refused_as_unauthorized():
    with pytest.raises(AppError):
        verify_standard_webhook(
            secrets=[random_secret(b"k" * 24)],
            msg_id="msg_1",
            timestamp="1" + "0" * 400,
            signature="v1,AAAA",
            body=b"{}",
            now=NOW,
            tolerance=TOLERANCE,
        )


# --- Stripe ----------------------------------------------------------------------------------


@FAST
@given(secret=secret_text, value=st.none() | header_text, body=st.binary(max_size=200))
@example(secret="whsec_x", value="t=" + "9" * 400 + ",v1=00", body=b"{}")
@example(secret="whsec_x", value="t=,v1=", body=b"")
def test_stripe_verify_raises_only_app_errors(secret, value, body):
    with pytest.raises(AppError):
        stripe.verify(
            platform_headers(**{"Stripe-Signature": value}),
            body,
            secret,
            now=NOW,
            tolerance=TOLERANCE,
        )


@FAST
@given(
    secret=secret_text,
    body=st.binary(max_size=500),
    skew=st.integers(min_value=-300, max_value=300),
    position=st.integers(min_value=0),
)
def test_a_stripe_signature_verifies_and_one_bit_off_does_not(secret, body, skew, position):
    timestamp = int(NOW.timestamp()) + skew
    good = stripe.signature(secret, timestamp, body)

    def verify(sig: str, payload: bytes) -> None:
        headers = platform_headers(**{"Stripe-Signature": f"t={timestamp},v1={sig},v0=ffff"})
        stripe.verify(headers, payload, secret, now=NOW, tolerance=TOLERANCE)

    verify(good, body)
    with pytest.raises(InvalidSignature):
        verify(good, flip_bit(body or b"\x00", position))
    with pytest.raises(InvalidSignature):
        verify(flip_char(good, position), body)


@PARSERS
@given(
    body=json_bytes(
        st.fixed_dictionaries(
            {
                "id": scalars,
                "type": st.sampled_from(STRIPE_TYPES) | scalars,
                "created": scalars,
                "data": st.fixed_dictionaries({"object": shaped(STRIPE_KEYS)}) | scalars,
            }
        )
    )
)
def test_stripe_parse_raises_only_app_errors(body):
    try:
        stripe.parse(body, now=NOW)
    except AppError as exc:
        assert exc.status == 422


# --- Shopify and WooCommerce (base64 HMAC of the body) ------------------------------------


@FAST
@given(
    platform=st.sampled_from([shopify, woocommerce]),
    secret=secret_text,
    value=st.none() | header_text,
    body=st.binary(max_size=200),
)
def test_body_signatures_raise_only_app_errors(platform, secret, value, body):
    with pytest.raises(AppError):
        platform.verify(platform_headers(**{platform.SIGNATURE_HEADER: value}), body, secret)


@FAST
@given(
    platform=st.sampled_from([shopify, woocommerce]),
    secret=secret_text,
    body=st.binary(max_size=500),
    position=st.integers(min_value=0),
)
def test_a_body_signature_verifies_and_one_bit_off_does_not(platform, secret, body, position):
    good = platform.signature(secret, body)
    platform.verify(platform_headers(**{platform.SIGNATURE_HEADER: good}), body, secret)
    with pytest.raises(InvalidSignature):
        bad_body = flip_bit(body or b"\x00", position)
        platform.verify(platform_headers(**{platform.SIGNATURE_HEADER: good}), bad_body, secret)
    raw = base64.b64decode(good)
    forged = base64.b64encode(flip_bit(raw, position)).decode()
    with pytest.raises(InvalidSignature):
        platform.verify(platform_headers(**{platform.SIGNATURE_HEADER: forged}), body, secret)


@PARSERS
@given(
    topic=st.none() | st.sampled_from(SHOPIFY_TOPICS) | header_text,
    webhook_id=st.none() | header_text,
    event_id=st.none() | header_text,
    body=json_bytes(shaped(SHOPIFY_KEYS)),
)
def test_shopify_parse_raises_only_app_errors(topic, webhook_id, event_id, body):
    headers = platform_headers(
        **{
            shopify.TOPIC_HEADER: topic,
            shopify.WEBHOOK_ID_HEADER: webhook_id,
            shopify.EVENT_ID_HEADER: event_id,
        }
    )
    try:
        shopify.parse(headers, body, now=NOW)
    except AppError as exc:
        assert exc.status == 422


@PARSERS
@given(
    topic=st.none() | st.sampled_from(WC_TOPICS) | header_text,
    delivery_id=st.none() | header_text,
    body=json_bytes(shaped(WC_KEYS)),
)
def test_woocommerce_parse_raises_only_app_errors(topic, delivery_id, body):
    headers = platform_headers(
        **{woocommerce.TOPIC_HEADER: topic, woocommerce.DELIVERY_ID_HEADER: delivery_id}
    )
    try:
        woocommerce.parse(headers, body, now=NOW)
    except AppError as exc:
        assert exc.status == 422


@FAST
@given(signature=st.none() | header_text, body=st.binary(max_size=100))
def test_woocommerce_ping_detection_raises_nothing(signature, body):
    woocommerce.ping(platform_headers(**{woocommerce.SIGNATURE_HEADER: signature}), body)


# --- PayPro Global (signed form fields) --------------------------------------------------------


@FAST
@given(
    body=st.binary(max_size=300)
    | paypro_forms.map(lambda f: _form(f).encode())
    | st.dictionaries(st.text(max_size=6), st.text(max_size=20)).map(
        lambda f: _form(f).encode("utf-8", "surrogatepass")
    )
)
def test_paypro_form_bodies_raise_only_app_errors(body):
    try:
        form_fields(body)
    except AppError as exc:
        assert exc.status == 422


def _form(fields: dict[str, str]) -> str:
    return urlencode(fields, errors="surrogatepass")  # a lone surrogate: bytes that are not UTF-8


@FAST
@given(fields=paypro_forms, secret=secret_text, validation_key=st.none() | secret_text)
def test_paypro_verify_raises_only_app_errors(fields, secret, validation_key):
    credentials = Credentials(secret=secret, validation_key=validation_key)
    assume(
        fields.get("HASH", "").strip().lower()
        != paypro.order_hash(fields.get("ORDER_ID", ""), secret)
    )
    with pytest.raises(AppError):
        paypro.verify(fields, credentials)


@FAST
@given(
    fields=paypro_forms,
    order_id=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
    secret=secret_text,
    validation_key=secret_text,
    position=st.integers(min_value=0),
)
def test_a_paypro_ipn_verifies_and_one_character_off_does_not(
    fields, order_id, secret, validation_key, position
):
    credentials = Credentials(secret=secret, validation_key=validation_key)
    ipn = {k: v for k, v in fields.items() if k not in ("HASH", "SIGNATURE")}
    ipn["ORDER_ID"] = order_id
    ipn["HASH"] = paypro.order_hash(order_id, secret)
    paypro.verify(ipn, credentials)
    signed = {**ipn, "SIGNATURE": paypro.signature(ipn, validation_key)}
    paypro.verify(signed, credentials)
    with pytest.raises(InvalidSignature):
        paypro.verify({**ipn, "HASH": flip_char(ipn["HASH"], position)}, credentials)
    with pytest.raises(InvalidSignature):
        paypro.verify(
            {**signed, "SIGNATURE": flip_char(signed["SIGNATURE"], position)}, credentials
        )


@PARSERS
@given(fields=paypro_forms)
def test_paypro_parse_raises_only_app_errors(fields):
    try:
        paypro.parse(fields, now=NOW)
    except AppError as exc:
        assert exc.status == 422


# --- the generic event format (EventIn) -------------------------------------------------------


events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(EVENT_TYPES) | scalars,
        "occurred_at": st.sampled_from(ODD_STRINGS) | scalars,
        "reference": scalars,
        "customer": shaped(EVENT_KEYS) | scalars,
        "products": st.lists(shaped(EVENT_KEYS), max_size=3) | scalars,
        "amount": scalars,
        "currency": st.sampled_from(ODD_STRINGS) | scalars,
        "recovery_url": st.sampled_from(ODD_STRINGS) | scalars,
        "attributes": shaped(EVENT_KEYS) | scalars,
    },
)


@PARSERS
@given(body=json_bytes(events | st.fixed_dictionaries({"events": st.lists(events, max_size=3)})))
def test_event_bodies_raise_only_malformed_or_validation_errors(body):
    try:
        data = parse_json(body)
    except AppError as exc:
        assert exc.status == 422
        return
    for model in (EventIn, EventBatchIn):
        with contextlib.suppress(ValidationError):
            model.model_validate(data)


# --- merchant templates -----------------------------------------------------------------------

# Jinja2 syntax, the template variables, sandbox escapes and size tricks, glued at random.
TEMPLATE_PIECES = [
    *words("""first_name last_name products recovery_url amount shop_name unknown_var p |upper
    |length |center( |join( |replace( |format( |indent( |wordwrap( |truncate( range( lipsum(
    .__class__ .mro() self cycler joiner namespace ( ) [ ] , 'a' "b" * ** % ~ + - / // 0 1 10
    99999 <p> </p> é"""),
    *["{{ ", " }}", "{% ", " %}", "{# ", " #}", " for p in products ", " endfor ", " if "],
    *[" else ", " endif ", " set x = ", " and ", " not ", "10 ** 10", "\n", "\r", "\x00"],
]
templates = st.lists(st.sampled_from(TEMPLATE_PIECES) | st.text(max_size=4), max_size=25).map(
    "".join
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=st.sampled_from(["subject", "html", "text"]), source=templates)
def test_template_validation_raises_only_template_problems(part, source):
    try:
        check_custom_template(part, source)
    except TemplateProblem as exc:
        assert exc.part == part
        assert exc.message
