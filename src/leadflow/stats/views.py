"""Dashboard figures as the API shows them: tallies formatted per currency, optionally
converted with the caller's rates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from leadflow.kit.codes import format_money, normalize_currency
from leadflow.kit.errors import field_error
from leadflow.stats.schemas import ConvertedValue, Figures, SeriesPoint, StepFigures

if TYPE_CHECKING:  # service.py imports this module
    from leadflow.stats.service import Tally

MAX_RATE = Decimal(1_000_000)


def parse_rates(text: str | None, target: str) -> dict[str, Decimal] | None:
    """``"USD:0.92,GBP:1.17"``: how many units of ``target`` one unit of each currency is."""
    if not text:
        return None
    rates = {target: Decimal(1)}
    for part in text.split(","):
        code, _, value = part.partition(":")
        try:
            currency = normalize_currency(code)
            rate = Decimal(value.strip())
        except (ValueError, InvalidOperation):
            raise field_error("rates", f"{part!r} is not CURRENCY:RATE, e.g. USD:0.92") from None
        if not rate.is_finite() or not 0 < rate <= MAX_RATE:
            raise field_error("rates", f"the rate for {currency} must be between 0 and {MAX_RATE}")
        rates[currency] = rate
    return rates


def _money(value: dict[str, Decimal]) -> dict[str, str]:
    return {c: format_money(a, c) or "0" for c, a in sorted(value.items())}


class FiguresView:
    """Turns tallies into figures; values in ``target`` too when ``rates`` are given."""

    def __init__(self, target: str, rates: dict[str, Decimal] | None) -> None:
        self.target = target
        self.rates = rates

    def converted(self, value: dict[str, Decimal]) -> ConvertedValue | None:
        if self.rates is None:
            return None
        missing = sorted(c for c in value if c not in self.rates)
        if missing:
            raise field_error("rates", f"no rate given for {', '.join(missing)}")
        total = sum((amount * self.rates[c] for c, amount in value.items()), Decimal(0))
        return ConvertedValue(currency=self.target, amount=format_money(total, self.target) or "0")

    def fields(self, t: Tally) -> dict[str, Any]:
        """The `Figures` fields, for the schemas that extend it."""
        return {
            "value": _money(t.value),
            "value_converted": self.converted(t.value),
            "followups_sent": t.followups_sent,
            "targeted_leads": t.targeted_leads,
            "converted_leads": t.converted_leads,
            "conversion_rate": t.conversion_rate,
            "bounces": t.bounces,
            "complaints": t.complaints,
            "bounce_rate": t.bounce_rate,
            "complaint_rate": t.complaint_rate,
        }

    def figures(self, t: Tally) -> Figures:
        return Figures(**self.fields(t))

    def steps(self, tallies: list[tuple[int, Tally]]) -> list[StepFigures]:
        return [StepFigures(step=step, **self.fields(t)) for step, t in tallies]

    def series(self, tallies: list[tuple[dt.datetime, Tally]]) -> list[SeriesPoint]:
        return [
            SeriesPoint(
                start=when,
                followups_sent=t.followups_sent,
                targeted_leads=t.targeted_leads,
                converted_leads=t.converted_leads,
                value=_money(t.value),
            )
            for when, t in tallies
        ]
