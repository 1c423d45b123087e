"""PayPro Global IPN (https://developers.payproglobal.com/docs/integrate-with-paypro-global/webhook-ipn/).

An ``application/x-www-form-urlencoded`` POST without a signature header. Two fields
authenticate it:

* ``HASH``: MD5 hex of ``ORDER_ID + secret key``;
* ``SIGNATURE`` (when present): SHA-256 hex of ``ORDER_ID + ORDER_STATUS +
  ORDER_TOTAL_AMOUNT + CUSTOMER_EMAIL + validation key + TEST_MODE + IPN_TYPE_NAME``.

Test orders carry ``HASH = MD5("1")`` whatever the secret key: anyone can compute that, so
they are accepted only with a valid ``SIGNATURE``. A present ``SIGNATURE`` must always match.
``ORDER_ID`` + ``IPN_TYPE_ID`` is the idempotency key: a resent IPN (``IS_RESENT=1``) is a
duplicate of the first one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

from leadflow.integrations.formats import Credentials, Ignored, Normalized, Outcome
from leadflow.integrations.formats.common import (
    country,
    currency,
    email,
    event_fields,
    form_fields,
    language,
    money,
    product,
    same,
    text,
    unauthorized,
)
from leadflow.kit.errors import field_error
from leadflow.vocabulary import EventType

PLATFORM = "paypro"

SIGNED_FIELDS = (
    "ORDER_ID",
    "ORDER_STATUS",
    "ORDER_TOTAL_AMOUNT",
    "CUSTOMER_EMAIL",
    None,  # the validation key
    "TEST_MODE",
    "IPN_TYPE_NAME",
)
TEST_ORDER_HASH = hashlib.md5(b"1").hexdigest()  # noqa: S324 - PayPro's scheme, not ours

UNFINISHED = ("OrderOnWaiting", "SubscriptionChargeFailed")
COMPLETED = ("OrderCharged", "SubscriptionChargeSucceed", "SubscriptionRenewed")
TRIAL = "TrialCharge"
SUBSCRIPTION_EVENTS = (
    "SubscriptionChargeSucceed",
    "SubscriptionRenewed",
    "SubscriptionChargeFailed",
)


def order_hash(order_id: str, secret: str) -> str:
    return hashlib.md5((order_id + secret).encode()).hexdigest()  # noqa: S324


def signature(fields: Mapping[str, str], validation_key: str) -> str:
    signed = "".join(
        validation_key if name is None else fields.get(name, "") for name in SIGNED_FIELDS
    )
    return hashlib.sha256(signed.encode()).hexdigest()


def verify(fields: Mapping[str, str], credentials: Credentials) -> None:
    order_id = fields.get("ORDER_ID", "")
    offered_hash = fields.get("HASH", "").strip().lower()
    if not order_id or not offered_hash:
        raise unauthorized("The IPN carries no ORDER_ID or no HASH.")
    hash_ok = same(order_hash(order_id, credentials.secret), offered_hash)
    test_order = same(TEST_ORDER_HASH, offered_hash)
    offered_signature = fields.get("SIGNATURE", "").strip().lower()
    signature_ok = False
    if offered_signature and credentials.validation_key:
        signature_ok = same(signature(fields, credentials.validation_key), offered_signature)
    if offered_signature and not signature_ok:
        raise unauthorized("SIGNATURE does not match the configured validation key.")
    if hash_ok or (test_order and signature_ok):
        return
    if test_order:
        raise unauthorized(
            'Test orders (HASH = MD5("1")) are accepted only with a valid SIGNATURE.'
        )
    raise unauthorized("HASH does not match the configured secret key.")


def read(
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    *,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> Outcome:
    fields = form_fields(body)
    verify(fields, credentials)
    return parse(fields, now=now)


def parse(fields: Mapping[str, str], *, now: dt.datetime) -> Outcome:
    order_id = text(fields.get("ORDER_ID"), 120)
    if order_id is None:
        raise field_error("ORDER_ID", "is required")
    ipn = text(fields.get("IPN_TYPE_NAME"), 64)
    ipn_type = text(fields.get("IPN_TYPE_ID"), 64) or ipn
    if ipn is None or ipn_type is None:
        raise field_error("IPN_TYPE_NAME", "is required")
    external_id = f"{order_id}:{ipn_type}"
    on_trial = fields.get("IS_ON_TRIAL_PERIOD", "").strip() == "1"
    if ipn == TRIAL or (ipn == "OrderCharged" and on_trial):
        kind = EventType.TRIAL_STARTED
    elif ipn in COMPLETED:
        kind = EventType.ORDER_COMPLETED
    elif ipn in UNFINISHED:
        kind = EventType.ORDER_UNFINISHED
    else:
        return Ignored(external_id, ipn, occurred_at=now, reference=order_id)
    subscription_id = text(fields.get("SUBSCRIPTION_ID"), 120)
    by_subscription = kind is EventType.TRIAL_STARTED or ipn in SUBSCRIPTION_EVENTS
    code = currency(fields.get("ORDER_CURRENCY_CODE"))
    event = event_fields(
        type=kind.value,
        occurred_at=now,
        reference=(subscription_id if by_subscription else None) or order_id,
        email=email(fields.get("CUSTOMER_EMAIL"), "CUSTOMER_EMAIL"),
        first_name=text(fields.get("CUSTOMER_FIRST_NAME"), 200),
        last_name=text(fields.get("CUSTOMER_LAST_NAME"), 200),
        language=language(fields.get("CUSTOMER_LANGUAGE_CODE")),
        country=country(fields.get("CUSTOMER_COUNTRY_CODE")),
        products=[
            product(
                fields.get("PRODUCT_ID") or fields.get("ORDER_ITEM_SKU"),
                fields.get("ORDER_ITEM_NAME"),
                fields.get("PRODUCT_QUANTITY"),
                money(fields.get("ORDER_ITEM_UNIT_PRICE"), code),
            )
        ],
        amount=money(fields.get("ORDER_TOTAL_AMOUNT"), code),
        currency=code,
        attributes={
            "paypro_order_id": order_id,
            "paypro_subscription_id": subscription_id,
            "trial_period_till": (
                text(fields.get("TRIAL_PERIOD_TILL"), 64)
                if kind is EventType.TRIAL_STARTED
                else None
            ),
            "test_mode": True if fields.get("TEST_MODE", "").strip() == "1" else None,
        },
    )
    return Normalized(external_id, ipn, event)
