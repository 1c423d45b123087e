"""Rendering follow-ups: predefined or merchant templates, always in a Jinja2 sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from leadflow.templates.catalog import (
    TEMPLATE_VARIABLES,
    get_template,
    languages_for,
    template_keys,
)

MAX_TEMPLATE_CHARS = 100_000


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


class TemplateProblem(ValueError):
    """A merchant template that cannot be used; ``part`` is subject, html or text."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.message = message


MAX_POWER_EXPONENT = 100
MAX_REPEAT = 10_000


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox (no attribute walking to __class__/__globals__, no mutating lists)
    that also refuses arithmetic meant to stall the worker: ``{{ 9**9**9 }}``,
    ``{{ 'x' * 10**9 }}``. Intercepted operators are never constant-folded at compile time."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _too_big_power(left, right):
            raise SecurityError("numbers this large are not allowed")
        if operator == "*" and (_too_long(left, right) or _too_long(right, left)):
            raise SecurityError("repeating text this much is not allowed")
        if (
            operator == "*"
            and _both_int(left, right)
            and left.bit_length() + right.bit_length() > 4096
        ):
            raise SecurityError("numbers this large are not allowed")
        return super().call_binop(context, operator, left, right)


def _both_int(left: Any, right: Any) -> bool:
    return isinstance(left, int) and isinstance(right, int)


def _too_big_power(base: Any, exponent: Any) -> bool:
    if not isinstance(exponent, int | float) or abs(exponent) > MAX_POWER_EXPONENT:
        return isinstance(exponent, int | float)
    return isinstance(base, int) and base.bit_length() * abs(exponent) > 4096


def _too_long(seq: Any, count: Any) -> bool:
    return (
        isinstance(seq, str | list | tuple)
        and isinstance(count, int)
        and len(seq) * count > MAX_REPEAT
    )


@cache
def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _Sandbox(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True)


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    # Compiling costs far more than rendering: every follow-up reuses its step's sources. The
    # predefined catalog takes 252 entries (warm_up), the rest is for merchants' templates.
    return _env(html).from_string(source)


def _render(source: str, context: dict[str, Any], *, html: bool) -> str:
    return _compiled(source, html).render(context)


def _one_line(subject: str) -> str:
    # Variables (a first name with a newline) must never add headers.
    return " ".join(subject.replace("\r", " ").replace("\n", " ").split())


def render_step(step: dict[str, Any], context: dict[str, Any], language: str | None) -> Rendered:
    """Render one stored step (predefined ``template`` key or custom subject/html/text)."""
    context = {**context, "discount_code": step.get("discount_code")}
    if step.get("template"):
        template = get_template(step["template"], language)
        sources = (template.subject, template.html, template.text)
    else:
        sources = (step["subject"], step["html"], step["text"])
    subject, html, text = sources
    return Rendered(
        subject=_one_line(_render(subject, context, html=False)),
        html=_render(html, context, html=True),
        text=_render(text, context, html=False),
    )


def sample_context() -> dict[str, Any]:
    return {
        "first_name": "Jane",
        "last_name": "Doe",
        "products": [{"name": "Pro plan", "quantity": 1, "unit_price": "€49.00"}],
        "amount": "€49.00",
        "recovery_url": "https://example.com/recover",
        "unsubscribe_url": "https://example.com/unsubscribe",
        "merchant_name": "Example Shop",
        "discount_code": "WELCOME10",
    }


_NO_OTHER_TEMPLATES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def _static_problem(ast: nodes.Template) -> str | None:
    """What the sample render cannot see: unsafe access in a branch the sample lead does not
    take (``{% if not first_name %}{{ ''.__class__ }}{% endif %}``) would only fail later, at
    send time. Private names and other templates are refused wherever they appear."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Const, *_NO_OTHER_TEMPLATES)):
        if isinstance(node, _NO_OTHER_TEMPLATES):
            return f"line {node.lineno}: templates cannot extend, include or import templates"
        name = None
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            name = node.arg.value
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
            name = node.value
        if name is not None:
            return f"line {node.lineno}: access to {name!r} is not allowed"
    return None


def check_custom_template(part: str, source: str) -> None:
    """Refuse a merchant template that does not parse, uses unknown variables or is unsafe."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(part, f"longer than {MAX_TEMPLATE_CHARS} characters")
    if part == "subject" and ("\r" in source or "\n" in source):
        raise TemplateProblem(part, "the subject must be a single line (no CR or LF)")
    env = _env(part == "html")
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(part, f"syntax error on line {exc.lineno}: {exc.message}") from None
    refused = _static_problem(ast)
    if refused:
        raise TemplateProblem(part, f"refused by the template sandbox: {refused}")
    unknown = sorted(meta.find_undeclared_variables(ast) - set(TEMPLATE_VARIABLES))
    if unknown:
        raise TemplateProblem(
            part,
            f"unknown variable(s): {', '.join(unknown)}; "
            f"available: {', '.join(TEMPLATE_VARIABLES)}",
        )
    try:
        env.from_string(source).render(sample_context())
    except SecurityError as exc:
        raise TemplateProblem(part, f"refused by the template sandbox: {exc}") from None
    except TemplateError as exc:
        raise TemplateProblem(part, f"cannot be rendered: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(part, f"cannot be rendered: {exc}") from None


@lru_cache(maxsize=256)
def babel_locale(language: str | None) -> Locale:
    """Babel's locale for a lead's language tag (English when unknown); parsed once per tag."""
    if language:
        try:
            return Locale.parse(language, sep="-")
        except (UnknownLocaleError, ValueError):
            try:
                return Locale.parse(language.split("-")[0])
            except (UnknownLocaleError, ValueError):
                pass
    return Locale("en")


def money(amount: Decimal | str | None, currency: str | None, language: str | None) -> str | None:
    """``49.00 EUR`` for ``de`` -> ``49,00 €``; None stays None."""
    if amount is None or currency is None:
        return None
    return format_currency(Decimal(str(amount)), currency, locale=babel_locale(language))


def warm_up() -> None:
    """Per-process work done once at start, not on the first follow-up or preview: compile every
    predefined template and load the locale data of every catalog language."""
    for key in template_keys():
        for language in languages_for(key):
            template = get_template(key, language)
            _compiled(template.subject, False)
            _compiled(template.html, True)
            _compiled(template.text, False)
            money(Decimal("1"), "EUR", language)
