"""Validation and normalisation of language, country, currency and time-zone codes."""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.numbers import get_currency_precision, list_currencies

# Babel's territory list includes codes ISO 3166-1 reserves but does not assign.
_NOT_ISO_COUNTRIES = {
    "AC",
    "CP",
    "CQ",
    "DG",
    "EA",
    "EU",
    "EZ",
    "IC",
    "QO",
    "TA",
    "UN",
    "XA",
    "XB",
    "XK",
    "ZZ",
}
_LANGUAGE_TAG = re.compile(
    r"^(?P<lang>[a-zA-Z]{2,3})(?:-(?P<script>[a-zA-Z]{4}))?(?:-(?P<region>[a-zA-Z]{2}|\d{3}))?$"
)


@cache
def _countries() -> frozenset[str]:
    codes = (code for code in Locale("en").territories if isinstance(code, str))
    return frozenset(
        code
        for code in codes
        if len(code) == 2 and code.isalpha() and code not in _NOT_ISO_COUNTRIES
    )


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalize_language(tag: str) -> str:
    """BCP 47 language tag, canonical case: ``de``, ``pt-BR``, ``zh-Hant-TW``."""
    match = _LANGUAGE_TAG.match(tag.strip().replace("_", "-"))
    if match is None:
        raise ValueError(f"{tag!r} is not a BCP 47 language tag such as 'de' or 'pt-BR'")
    out = match["lang"].lower()
    if match["script"]:
        out += "-" + match["script"].title()
    if match["region"]:
        out += "-" + match["region"].upper()
    return out


def normalize_country(code: str) -> str:
    upper = code.strip().upper()
    if upper not in _countries():
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return upper


def normalize_currency(code: str) -> str:
    upper = code.strip().upper()
    if len(upper) != 3 or upper not in _currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return upper


@cache
def currency_exponent(code: str) -> int:
    return int(get_currency_precision(code))


def check_amount(amount: Decimal, currency: str) -> Decimal:
    """Refuse amounts with more decimals than the currency has (``10.005 EUR``)."""
    if not amount.is_finite():
        raise ValueError("amount must be a finite decimal")
    if amount < 0:
        raise ValueError("amount must not be negative")
    exponent = currency_exponent(currency)
    if amount >= Decimal("1e14"):
        raise ValueError("amount is too large")
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise ValueError(f"{currency} amounts have at most {exponent} decimal places")
    return amount


def check_timezone(name: str) -> str:
    if name not in _timezones():
        raise ValueError(f"{name!r} is not an IANA time zone such as 'Europe/Berlin'")
    return name


def format_money(amount: Decimal | None, currency: str | None) -> str | None:
    """Decimal string with the currency's own number of decimals (``49.00``, ``5000`` JPY)."""
    if amount is None:
        return None
    if currency is None:
        return str(amount.normalize())
    return str(amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))))
