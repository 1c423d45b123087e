"""Rendering follow-ups: predefined or merchant templates, always in a Jinja2 sandbox.

The sandbox also keeps a merchant template's cost in check: under a ``RenderBudget`` every
loop iteration and call is counted and the wall clock is checked, the output is measured as it
is produced, and the constructs that make large text from a short template (padding, joining,
replacing, repeating, concatenating, ``%`` formats, ``range``, ``lipsum``) refuse sizes beyond
the limits before they allocate them. ``templates.isolation`` runs merchant templates in a
separate process on top of this, which bounds what these checks cannot see."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

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


class TemplateOverLimit(TemplateProblem):
    """A merchant template that takes too long, makes too much output or needs too much
    memory to render: the merchant's template, not a fault of the service. ``reason`` is
    time, memory, steps, size or depth."""

    def __init__(self, part: str, message: str, reason: str) -> None:
        super().__init__(part, message)
        self.reason = reason


class LimitExceeded(TemplateError):
    """Raised inside a render that goes beyond its ``RenderBudget``."""

    def __init__(self, message: str, reason: str = "size") -> None:
        super().__init__(message)
        self.reason = reason


MAX_POWER_EXPONENT = 100
MAX_REPEAT = 10_000
# Loop iterations plus calls (macros, methods, filters) in one render: a template looping
# over a lead's products uses a few dozen; 10,000 x 10,000 nested loops would need 10**8.
MAX_RENDER_STEPS = 100_000
# Widths, indents and counts given to filters (``center``, ``indent``, ``batch``, ...).
MAX_WIDTH = 10_000
DEFAULT_RENDER_SECONDS = 2.0
DEFAULT_OUTPUT_CHARS = 1024 * 1024


@dataclass(frozen=True)
class RenderLimits:
    """What one merchant template may use: wall-clock seconds and characters of output (per
    part: subject, html or text)."""

    seconds: float = DEFAULT_RENDER_SECONDS
    output_chars: int = DEFAULT_OUTPUT_CHARS


class RenderBudget:
    """The limits of one render in progress, checked as it runs."""

    __slots__ = ("deadline", "limits", "steps_left")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.steps_left = MAX_RENDER_STEPS

    def tick(self) -> None:
        self.steps_left -= 1
        if self.steps_left & 0xF == 0 or self.steps_left < 0:
            if self.steps_left < 0:
                raise LimitExceeded(
                    f"more than {MAX_RENDER_STEPS:,} loop iterations and calls", "steps"
                )
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"took longer than {self.limits.seconds:g} s to render", "time")


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("leadflow_render_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


def _output_limit() -> int:
    budget = _BUDGET.get()
    return budget.limits.output_chars if budget is not None else DEFAULT_OUTPUT_CHARS


def _check_size(size: int) -> None:
    limit = _output_limit()
    if size > limit:
        raise LimitExceeded(f"makes text longer than {limit:,} characters")


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        _check_size(len(value))
    return value


# ``%5d``, ``%-*s``, ``%.3f``: the width and precision of a printf-style conversion.
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
# ``{:>20}``, ``{0:.3f}``: the format spec of a replacement field; ``{:>{w}}`` nests one.
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_NUMBER = re.compile(r"\d+")


def _check_printf(fmt: Any, args: Any) -> None:
    """Refuse ``'%999999999d' % 1`` and ``'%*d' % (10**9, 1)`` before Python pads."""
    if not isinstance(fmt, str):
        return
    for width, precision in _PRINTF_SPEC.findall(fmt):
        for number in (width, precision):
            if number.isdigit() and int(number) > MAX_WIDTH:
                raise LimitExceeded(f"widths over {MAX_WIDTH:,} are not allowed")
    if "*" in fmt:
        values = args if isinstance(args, tuple) else (args,)
        if any(isinstance(v, int) and abs(v) > MAX_WIDTH for v in values):
            raise LimitExceeded(f"widths over {MAX_WIDTH:,} are not allowed")


def _check_format_method(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse ``'{:>999999999}'.format(x)`` and widths passed as arguments."""
    for spec in _BRACE_SPEC.findall(fmt):
        if any(int(n) > MAX_WIDTH for n in _NUMBER.findall(spec)):
            raise LimitExceeded(f"widths over {MAX_WIDTH:,} are not allowed")
    values = (*args, *kwargs.values())
    if _NESTED_SPEC.search(fmt) and _big_count(*values):
        raise LimitExceeded(f"widths over {MAX_WIDTH:,} are not allowed")


def _big_count(*values: Any) -> bool:
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and abs(v) > MAX_WIDTH
        for v in values
    )


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse filter arguments that would make huge text; may return args to call with."""
    value, rest = (args[0], args[1:]) if args else (None, ())
    options = (*rest, *kwargs.values())
    if name in {"center", "indent", "wordwrap", "batch", "slice", "tojson"} and _big_count(
        *options
    ):
        raise LimitExceeded(f"{name}: sizes over {MAX_WIDTH:,} are not allowed")
    limit = _output_limit()
    text = value if isinstance(value, str) else ""
    if name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else int(width or 0)
        if (text.count("\n") + 1) * pad + len(text) > limit:
            raise LimitExceeded(f"indent: makes text longer than {limit:,} characters")
    elif name == "wordwrap":
        width = rest[0] if rest else kwargs.get("width", 79)
        wrap = kwargs.get("wrapstring", rest[2] if len(rest) > 2 else None) or "\n"
        if (
            isinstance(width, int)
            and isinstance(wrap, str)
            and (len(text) // max(width, 1) + 1) * len(wrap) + len(text) > limit
        ):
            raise LimitExceeded(f"wordwrap: makes text longer than {limit:,} characters")
    elif name == "replace":
        old = rest[0] if rest else kwargs.get("old", "")
        new = rest[1] if len(rest) > 1 else kwargs.get("new", "")
        if isinstance(old, str) and isinstance(new, str):
            hits = text.count(old) if old else len(text) + 1
            if hits * len(new) + len(text) > limit:
                raise LimitExceeded(f"replace: makes text longer than {limit:,} characters")
    elif name == "join" and value is not None and not isinstance(value, str):
        items = list(value)
        glue = rest[0] if rest else kwargs.get("d", "")
        if isinstance(glue, str) and len(glue) * len(items) > limit:
            raise LimitExceeded(f"join: makes text longer than {limit:,} characters")
        return (items, *rest)
    elif name == "format":
        _check_printf(value, tuple(rest) or kwargs)
    return args


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(func, "jinja_pass_arg", None) is not None

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if passes:
            args = (args[0], *_check_filter(name, args[1:], kwargs))
        else:
            args = _check_filter(name, args, kwargs)
        return _sized(func(*args, **kwargs))

    return guarded


def _guarded_range(*args: Any) -> range:
    _tick()
    return safe_range(*args)


def _guarded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if _big_count(n * 100, max * 10):
        raise LimitExceeded("lipsum: at most 100 paragraphs of 1,000 words")
    return generate_lorem_ipsum(n, html, min, max)


def _counted(iterable: Iterable[Any], budget: RenderBudget) -> Iterator[Any]:
    for item in iterable:
        budget.tick()
        yield item


class _Guards(NodeTransformer):
    """Every ``{% for %}`` iterates through ``guarded_iter`` (counted against the budget) and
    every ``~`` concatenation is measured (doubling a string in a loop stops at the limit)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call_env("guarded_iter", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call_env("sized", node)


def _call_env(name: str, arg: nodes.Node) -> nodes.Call:
    return nodes.Call(
        nodes.EnvironmentAttribute(name, lineno=arg.lineno),
        [arg],
        [],
        None,
        None,
        lineno=arg.lineno,
    )


class _Sandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox (no attribute walking to __class__/__globals__, no mutating lists)
    that also refuses arithmetic meant to stall the worker: ``{{ 9**9**9 }}``,
    ``{{ 'x' * 10**9 }}``. Intercepted operators are never constant-folded at compile time.
    The predefined templates render here."""

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


class _GuardedSandbox(_Sandbox):
    """The sandbox of merchant templates: loops, calls and the size of what filters and
    operators make are checked too (see the module docstring)."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}
        self.globals["range"] = _guarded_range
        self.globals["lipsum"] = _guarded_lipsum

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        ast = super()._parse(source, name, filename)
        _Guards().visit(ast)
        return ast

    def guarded_iter(self, iterable: Any) -> Any:
        budget = _BUDGET.get()
        return iterable if budget is None else _counted(iterable, budget)

    def sized(self, value: Any) -> Any:
        return _sized(value)

    def concat(self, parts: Iterable[str]) -> str:
        # Buffered output ({% set %} blocks, macros, {% filter %}): measured before joining.
        if isinstance(parts, list):
            _check_size(sum(map(len, parts)))
        return "".join(parts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__
        inner = wrapper

        def checked(*args: Any, **kwargs: Any) -> str:
            for mapping in args if value.__name__ == "format_map" else ():
                if isinstance(mapping, dict):
                    kwargs = {**kwargs, **mapping}
            _check_format_method(fmt, args, kwargs)
            return inner(*args, **kwargs)

        return checked

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "+" and isinstance(left, str | list | tuple) and hasattr(right, "__len__"):
            _check_size(len(left) + len(right))
        if operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _sized(super().call_binop(context, operator, left, right))


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
def _env(autoescape: bool, trusted: bool = False) -> ImmutableSandboxedEnvironment:
    """The sandbox of merchant templates, or (``trusted``) of the predefined ones, which skip
    the per-loop and per-call checks."""
    sandbox = _Sandbox if trusted else _GuardedSandbox
    return sandbox(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        finalize=_blank_if_none,
    )


def _blank_if_none(value: Any) -> Any:
    """What a lead lacks (no first name, no recovery link) prints as nothing, never "None":
    no "Hi None", no ``href="None"``."""
    return "" if value is None else value


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool, trusted: bool = False) -> Template:
    # Compiling costs far more than rendering: every follow-up reuses its step's sources. The
    # predefined catalog takes 252 entries (warm_up), the rest is for merchants' templates.
    return _env(html, trusted).from_string(source)


def _render(source: str, context: dict[str, Any], *, html: bool, trusted: bool) -> str:
    return _compiled(source, html, trusted).render(context)


def render_limited(template: Template, context: dict[str, Any], limits: RenderLimits) -> str:
    """Render under a budget: output measured as it streams, loops and calls counted, the
    clock checked. Raises ``LimitExceeded`` past any limit."""
    budget = RenderBudget(limits)
    token = _BUDGET.set(budget)
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > limits.output_chars:
                raise LimitExceeded(f"output longer than {limits.output_chars:,} characters")
            chunks.append(chunk)
            budget.tick()
        budget.check_time()
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)


def render_custom_part(
    source: str, context: dict[str, Any], *, html: bool, limits: RenderLimits
) -> str:
    """One part of a merchant's step, rendered under ``limits``."""
    return render_limited(_compiled(source, html), context, limits)


def one_line(subject: str) -> str:
    # Variables (a first name with a newline) must never add headers.
    return " ".join(subject.replace("\r", " ").replace("\n", " ").split())


def step_context(step: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "discount_code": step.get("discount_code")}


def render_step(step: dict[str, Any], context: dict[str, Any], language: str | None) -> Rendered:
    """Render one stored step (predefined ``template`` key or custom subject/html/text) in
    this thread, without limits: for the predefined templates, which are trusted. Merchant
    templates render through ``templates.isolation.render_step_bounded``."""
    context = step_context(step, context)
    trusted = bool(step.get("template"))
    if trusted:
        template = get_template(step["template"], language)
        sources = (template.subject, template.html, template.text)
    else:
        sources = (step["subject"], step["html"], step["text"])
    subject, html, text = sources
    return Rendered(
        subject=one_line(_render(subject, context, html=False, trusted=trusted)),
        html=_render(html, context, html=True, trusted=trusted),
        text=_render(text, context, html=False, trusted=trusted),
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


def sparse_sample_context() -> dict[str, Any]:
    """A lead that leadflow also follows up: no name, no products, no amount, no recovery
    link, no discount code. A template must render for it too, or it would fail at send time."""
    return {
        **sample_context(),
        "first_name": None,
        "last_name": None,
        "products": [],
        "amount": None,
        "recovery_url": None,
        "discount_code": None,
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


def check_template_text(part: str, source: str) -> None:
    """The checks that need no parsing: length, and one line for a subject."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(part, f"longer than {MAX_TEMPLATE_CHARS} characters")
    if part == "subject" and ("\r" in source or "\n" in source):
        raise TemplateProblem(part, "the subject must be a single line (no CR or LF)")


def check_custom_template(part: str, source: str, limits: RenderLimits | None = None) -> None:
    """Refuse a merchant template that does not parse, uses unknown variables, is unsafe, or
    goes beyond ``limits`` when rendered for the sample lead. Runs the template: call it in
    the render process (``templates.isolation.check_templates``), not in the API."""
    check_template_text(part, source)
    env = _env(part == "html")
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(part, f"syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateOverLimit(
            part, "exceeds the parsing limits: nested too deeply", "depth"
        ) from None
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
    compiled = env.from_string(source)
    try:
        render_limited(compiled, sample_context(), limits or RenderLimits())
    except Exception as exc:
        raise template_problem(part, exc) from None
    try:
        render_limited(compiled, sparse_sample_context(), limits or RenderLimits())
    except Exception as exc:
        problem = template_problem(part, exc)
        if isinstance(problem, TemplateOverLimit):
            raise problem from None
        line = _template_line(exc)
        where = f" on line {line}" if line else ""
        raise TemplateProblem(
            part,
            f"fails{where} for a lead without a name, products, amount, recovery link or "
            f"discount code ({exc}); guard that part with {{% if ... %}}",
        ) from None


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja puts template frames in the
    traceback under the file name ``<template>``)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def template_problem(part: str, exc: BaseException) -> TemplateProblem:
    """What a merchant is told about a template that raised ``exc`` while rendering."""
    if isinstance(exc, LimitExceeded):
        return TemplateOverLimit(part, f"exceeds the rendering limits: {exc}", exc.reason)
    if isinstance(exc, MemoryError):
        return TemplateOverLimit(
            part, "exceeds the rendering limits: needs too much memory", "memory"
        )
    if isinstance(exc, RecursionError):
        return TemplateOverLimit(part, "exceeds the rendering limits: nested too deeply", "depth")
    if isinstance(exc, SecurityError):
        return TemplateProblem(part, f"refused by the template sandbox: {exc}")
    return TemplateProblem(part, f"cannot be rendered: {exc}")


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
            _compiled(template.subject, False, True)
            _compiled(template.html, True, True)
            _compiled(template.text, False, True)
            money(Decimal("1"), "EUR", language)
