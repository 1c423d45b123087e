"""Helpers shared by the platform adapters: signatures, body parsing, lenient normalisation.

Platforms send values leadflow cannot always use (``"auto"`` as a locale, a region code that
is not an ISO country): such values are dropped rather than failing the whole delivery.
What leadflow cannot do without (an unparseable body, an id, a malformed email) is a 422
naming the platform's own field.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from pydantic import AnyHttpUrl, EmailStr, TypeAdapter, ValidationError

from leadflow.ingest.errors import InvalidSignature, MalformedBody
from leadflow.ingest.schemas import EventIn
from leadflow.ingest.verify import parse_json
from leadflow.kit.codes import (
    currency_exponent,
    normalize_country,
    normalize_currency,
    normalize_language,
)
from leadflow.kit.errors import AppError, FieldProblem, field_error, validation_error

MAX_PRODUCTS = 500
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)
_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)
_MAX_AMOUNT = Decimal("1e14")


# --- signatures ---------------------------------------------------------------------------


def unauthorized(detail: str) -> InvalidSignature:
    return InvalidSignature(detail)


def same(expected: str, offered: str) -> bool:
    """Constant-time comparison of two signature strings (any characters)."""
    return hmac.compare_digest(expected.encode(), offered.encode())


def hmac_sha256(key: str, message: bytes) -> bytes:
    """HMAC-SHA256 keyed with the secret string's UTF-8 bytes (no decoding of the secret)."""
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


def body_signature(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body (Shopify's and WooCommerce's scheme)."""
    return base64.b64encode(hmac_sha256(secret, body)).decode()


def verify_body_signature(
    headers: Mapping[str, str], body: bytes, secret: str, header_name: str
) -> None:
    offered = header(headers, header_name)
    if offered is None:
        raise unauthorized(f"Missing {header_name} header.")
    if not same(body_signature(secret, body), offered):
        raise unauthorized(f"{header_name} does not match the configured secret.")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, stripped; None when absent or blank."""
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def require_header(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if value is None or "\x00" in value:
        raise field_error(name, "header is required")
    if len(value) > 255:
        raise field_error(name, "must be at most 255 characters")
    return value


# --- bodies -------------------------------------------------------------------------------


def json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise AppError(
            422,
            "validation_error",
            "The body must be a JSON object.",
            errors=[FieldProblem(field="body", message="must be a JSON object")],
        )
    return data


def form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (UTF-8); the first value of each key."""
    malformed = MalformedBody(
        "The body is not a UTF-8 application/x-www-form-urlencoded form.",
        message="malformed form body",
    )
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=2000
        )
    except (UnicodeDecodeError, ValueError):
        raise malformed from None
    if "\x00" in text or not pairs:
        raise malformed
    fields: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise field_error(key if "\x00" not in key else "body", "must not contain U+0000")
        fields.setdefault(key, value)
    return fields


def obj(value: Any) -> dict[str, Any]:
    """A nested JSON object, or an empty one when absent or of another type."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict[str, Any]]:
    """The objects in a JSON array (others skipped); empty when absent."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def required_id(data: Mapping[str, Any], key: str, field: str | None = None) -> str:
    """An identifier leadflow cannot do without (string or integer)."""
    value = text(data.get(key), 255)
    if value is None:
        raise field_error(field or key, "is required")
    return value


# --- lenient values -----------------------------------------------------------------------


def is_digits(value: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``"²"``, which ``int`` refuses)."""
    return value.isascii() and value.isdigit()


def text(value: Any, max_length: int) -> str | None:
    """A non-blank string (numbers are accepted as ids), cut to ``max_length``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or "\x00" in value:
        return None
    return value[:max_length]


def email(value: Any, field: str) -> str | None:
    """None when absent; a 422 naming ``field`` when present but not an email address."""
    address = text(value, 10_000)
    if address is None:
        return None
    if len(address) > 320:
        raise field_error(field, "is longer than 320 characters")
    try:
        _EMAIL.validate_python(address)
    except ValidationError:
        raise field_error(field, f"{address!r} is not a valid email address") from None
    return address


def country(value: Any) -> str | None:
    code = text(value, 10)
    try:
        return normalize_country(code) if code else None
    except ValueError:
        return None


def language(value: Any) -> str | None:
    tag = text(value, 35)
    try:
        return normalize_language(tag) if tag else None
    except ValueError:
        return None


def currency(value: Any) -> str | None:
    code = text(value, 10)
    try:
        return normalize_currency(code) if code else None
    except ValueError:
        return None


def money(value: Any, currency_code: str | None) -> Decimal | None:
    """A decimal amount (string or number) rounded to the currency's exponent; None when it
    is absent, unusable, negative or absurd."""
    if currency_code is None or value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return _bounded(amount, currency_exponent(currency_code))


def minor_units(
    value: Any, currency_code: str | None, exponent: int | None = None
) -> Decimal | None:
    """An integer amount in minor units (Stripe's ``amount_total``) as a decimal."""
    if currency_code is None or not isinstance(value, int) or isinstance(value, bool):
        return None
    exp = currency_exponent(currency_code) if exponent is None else exponent
    return _bounded(Decimal(value).scaleb(-exp), currency_exponent(currency_code))


def _bounded(amount: Decimal, exponent: int) -> Decimal | None:
    if not amount.is_finite() or amount < 0 or amount >= _MAX_AMOUNT:
        return None
    return amount.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def url(value: Any) -> str | None:
    link = text(value, 2048)
    if link is None:
        return None
    try:
        _URL.validate_python(link)
    except ValidationError:
        return None
    return link


def split_name(value: Any) -> tuple[str | None, str | None]:
    """``"Jenny Rosen"`` -> ``("Jenny", "Rosen")``; the first word is the first name."""
    name = text(value, 401)
    if name is None:
        return None, None
    first, _, last = name.partition(" ")
    return first[:200], (last.strip()[:200] or None)


def product(
    id_: Any, name: Any, quantity: Any = 1, unit_price: Decimal | None = None
) -> dict[str, Any] | None:
    """A product line, or None when it has neither id nor name."""
    pid, pname = text(id_, 255), text(name, 500)
    if pid is None and pname is None:
        return None
    qty = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1
    if isinstance(quantity, str) and is_digits(quantity.strip()):
        qty = int(quantity.strip()[:12])
    return {
        "id": pid or (pname or "")[:255],
        "name": pname or pid,
        "quantity": min(max(qty, 1), 1_000_000),
        "unit_price": str(unit_price) if unit_price is not None else None,
    }


def from_unix(value: Any) -> dt.datetime | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value: Any, *, naive_is_utc: bool = False) -> dt.datetime | None:
    """An ISO 8601 timestamp; a naive one only when ``naive_is_utc`` (WooCommerce ``*_gmt``)."""
    stamp = text(value, 64)
    if stamp is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            return None
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        return None


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_fields(
    *,
    type: str,
    occurred_at: dt.datetime,
    reference: str | None,
    email: str | None,
    first_name: str | None = None,
    last_name: str | None = None,
    language: str | None = None,
    country: str | None = None,
    products: list[dict[str, Any] | None] | None = None,
    amount: Decimal | None = None,
    currency: str | None = None,
    recovery_url: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``EventIn`` fields from normalised values (prices without a currency are dropped)."""
    lines = [p for p in (products or []) if p is not None][:MAX_PRODUCTS]
    if currency is None:
        amount = None
        lines = [{**p, "unit_price": None} for p in lines]
    return {
        "type": type,
        "occurred_at": iso(occurred_at),
        "reference": reference,
        "customer": {
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "language": language,
            "country": country,
        },
        "products": lines,
        "amount": str(amount) if amount is not None else None,
        "currency": currency,
        "recovery_url": recovery_url,
        "attributes": {k: v for k, v in (attributes or {}).items() if v is not None},
    }


def build_event(fields: dict[str, Any]) -> EventIn:
    """The ``EventIn`` of normalised fields (its email known by now)."""
    try:
        return EventIn.model_validate(fields)
    except ValidationError as exc:
        raise validation_error(exc) from None
