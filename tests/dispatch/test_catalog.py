"""The predefined, localized follow-up templates render safely in every language."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from typing import Any

import jinja2
import pytest
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from leadflow.templates.catalog import (
    SUPPORTED_LANGUAGES,
    TEMPLATE_SOURCE_TYPES,
    TEMPLATE_VARIABLES,
    PredefinedTemplate,
    get_template,
    is_template_key,
    languages_for,
    resolve_language,
    template_keys,
)
from leadflow.templates.render import _compiled, render_step, sample_context, warm_up

KEYS = template_keys()
ALL = list(itertools.product(KEYS, SUPPORTED_LANGUAGES))

RECOVERY_URL = "https://shop.example/recover?lead=42&sig=abc"
UNSUBSCRIBE_URL = "https://leadflow.example/u/tok_123"


def full_context(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "first_name": "Jane",
        "last_name": "Doe",
        "products": [
            {"name": "Linen shirt", "quantity": 2, "unit_price": "€39.90"},
            {"name": "Canvas tote", "quantity": 1, "unit_price": None},
        ],
        "amount": "€79.80",
        "recovery_url": RECOVERY_URL,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "merchant_name": "Nordic Goods",
        "discount_code": "COMEBACK15",
    }
    context.update(overrides)
    return context


def minimal_context() -> dict[str, Any]:
    return {
        "first_name": None,
        "last_name": None,
        "products": [],
        "amount": None,
        "recovery_url": None,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "merchant_name": "Nordic Goods",
        "discount_code": None,
    }


# The environment the catalog is specified for, and the one leadflow.templates.render uses.
ENVIRONMENTS = {
    "sandboxed": lambda autoescape: SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=autoescape
    ),
    "immutable": lambda autoescape: ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=autoescape, keep_trailing_newline=True
    ),
}


@functools.cache
def compiled(env: str, autoescape: bool, source: str) -> jinja2.Template:
    return ENVIRONMENTS[env](autoescape).from_string(source)


def render(
    template: PredefinedTemplate, context: dict[str, Any], env: str = "sandboxed"
) -> tuple[str, str, str]:
    return (
        compiled(env, False, template.subject).render(context),
        compiled(env, True, template.html).render(context),
        compiled(env, False, template.text).render(context),
    )


# --- keys, languages, lookup ----------------------------------------------------------------


def test_twelve_keys_in_source_then_step_order() -> None:
    expected = [f"{source}/{step}" for source in TEMPLATE_SOURCE_TYPES for step in (1, 2, 3)]
    assert template_keys() == expected
    assert len(KEYS) == 12
    assert KEYS[:3] == ["abandoned_checkout/1", "abandoned_checkout/2", "abandoned_checkout/3"]
    assert KEYS[-1] == "renewal/3"
    # a copy: callers cannot change the catalog
    keys = template_keys()
    keys.clear()
    assert len(template_keys()) == 12


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_a_template_key_in_all_languages(key: str) -> None:
    assert is_template_key(key)
    assert languages_for(key) == list(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize(
    "key", ["", "trial", "trial/0", "trial/4", "TRIAL/1", "checkout/1", "trial/1 ", "/1"]
)
def test_unknown_keys(key: str) -> None:
    assert not is_template_key(key)
    with pytest.raises(KeyError):
        get_template(key, "en")
    with pytest.raises(KeyError):
        languages_for(key)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("en", "en"),
        ("de", "de"),
        ("DE", "de"),
        ("de-AT", "de"),
        ("de_CH", "de"),
        ("pt-BR", "pt"),
        ("pt-PT", "pt"),
        ("fr-CA", "fr"),
        ("es-419", "es"),
        ("it", "it"),
        ("nl-BE", "nl"),
        (" nl ", "nl"),
        ("EN-gb", "en"),
        ("ja", "en"),
        ("zh-Hant-TW", "en"),
        ("", "en"),
        ("-", "en"),
        (None, "en"),
    ],
)
def test_resolve_language(given: str | None, expected: str) -> None:
    assert resolve_language(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("pt-BR", "pt"), ("de-AT", "de"), ("FR", "fr"), (None, "en"), ("ja", "en"), ("", "en")],
)
def test_get_template_falls_back_like_resolve_language(given: str | None, expected: str) -> None:
    template = get_template("trial/2", given)
    assert template.key == "trial/2"
    assert template.language == expected
    assert template == get_template("trial/2", expected)


def test_templates_are_frozen() -> None:
    template = get_template("renewal/1", "en")
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.subject = "changed"  # type: ignore[misc]


# --- sources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "language"), ALL)
def test_sources_only_use_the_documented_variables(key: str, language: str) -> None:
    template = get_template(key, language)
    assert (template.key, template.language) == (key, language)
    env = SandboxedEnvironment()
    for source in (template.subject, template.html, template.text):
        used = meta.find_undeclared_variables(env.parse(source))
        assert used <= set(TEMPLATE_VARIABLES), used - set(TEMPLATE_VARIABLES)
    assert "\r" not in template.subject
    assert "\n" not in template.subject
    assert template.subject.strip()


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
@pytest.mark.parametrize(("key", "language"), ALL)
def test_renders_with_a_full_context(key: str, language: str, env: str) -> None:
    subject, html, text = render(get_template(key, language), full_context(), env)

    assert subject.strip()
    assert "\r" not in subject
    assert "\n" not in subject
    for output in (subject, html, text):
        assert "None" not in output
        assert "{{" not in output
        assert "{%" not in output

    assert html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in html
    assert "Jane" in html
    assert "Jane" in text
    assert "Nordic Goods" in html
    assert "Nordic Goods" in text

    # links: the recovery button and the unsubscribe link, attribute-escaped in HTML
    assert f'href="{RECOVERY_URL.replace("&", "&amp;")}"' in html
    assert f'href="{UNSUBSCRIBE_URL}"' in html
    assert RECOVERY_URL in text
    assert UNSUBSCRIBE_URL in text

    # products, unit prices, quantities and the total
    for output in (html, text):
        assert "Linen shirt" in output
        assert "Canvas tote" in output
        assert "€39.90" in output
        assert "€79.80" in output
        assert "2" in output
        assert "COMEBACK15" in output

    assert "\n\n\n" not in text


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
@pytest.mark.parametrize(("key", "language"), ALL)
def test_renders_with_a_minimal_context(key: str, language: str, env: str) -> None:
    subject, html, text = render(get_template(key, language), minimal_context(), env)

    assert subject.strip()
    assert "\n" not in subject
    for output in (subject, html, text):
        assert "None" not in output
        assert "{{" not in output
    assert "<a href" in html  # only the unsubscribe link is left
    assert html.count("<a href") == 1
    assert f'href="{UNSUBSCRIBE_URL}"' in html
    assert UNSUBSCRIBE_URL in text
    assert "https://shop.example" not in html + text
    assert "\n\n\n" not in text
    assert text.strip()


@pytest.mark.parametrize(("key", "language"), ALL)
def test_greeting_with_and_without_a_first_name(key: str, language: str) -> None:
    template = get_template(key, language)
    _, html_named, text_named = render(template, full_context(first_name="Zoë"))
    _, html_plain, text_plain = render(template, minimal_context())
    assert "Zoë" in text_named.splitlines()[0]
    assert "Zoë" in html_named
    assert "Zoë" not in text_plain + html_plain
    assert text_plain.splitlines()[0] != text_named.splitlines()[0]


def test_english_greeting() -> None:
    template = get_template("abandoned_checkout/1", "en")
    assert render(template, full_context())[2].startswith("Hi Jane,\n")
    assert render(template, minimal_context())[2].startswith("Hi,\n")


@pytest.mark.parametrize(("key", "language"), ALL)
def test_html_escapes_the_variables(key: str, language: str) -> None:
    evil = '<script>alert("x")</script>'
    context = full_context(
        first_name=evil,
        merchant_name="Bad & <b>Co</b>",
        products=[{"name": "<img src=x onerror=alert(1)>", "quantity": 1, "unit_price": "<i>"}],
        recovery_url='https://shop.example/r?a=1&b="><script>',
    )
    subject, html, text = render(get_template(key, language), context)
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>Co" not in html
    assert "&lt;script&gt;" in html
    assert "Bad &amp; &lt;b&gt;Co&lt;/b&gt;" in html
    assert '&#34;&gt;&lt;script&gt;"' in html  # the URL cannot break out of href="..."
    # text and subject are plain text: shown as given
    assert evil in text
    assert "\n" not in subject


@pytest.mark.parametrize(("key", "language"), ALL)
def test_merchant_name_cannot_break_the_subject(key: str, language: str) -> None:
    context = full_context(merchant_name="Shop\r\nBcc: victim@example.com\nX")
    subject, _, _ = render(get_template(key, language), context)
    assert "\r" not in subject
    assert "\n" not in subject


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("source", TEMPLATE_SOURCE_TYPES)
def test_last_step_mentions_the_discount_code(source: str, language: str) -> None:
    template = get_template(f"{source}/3", language)
    _, html, text = render(template, full_context(discount_code="LAST-CHANCE-20"))
    assert "LAST-CHANCE-20" in html
    assert "LAST-CHANCE-20" in text
    _, html, text = render(template, full_context(discount_code=None))
    assert "LAST-CHANCE-20" not in html + text
    assert "None" not in html + text


@pytest.mark.parametrize(("key", "language"), ALL)
def test_products_without_quantity_or_price(key: str, language: str) -> None:
    products = [{"name": "Gift card", "quantity": None, "unit_price": None}]
    _, html, text = render(get_template(key, language), full_context(products=products))
    assert "Gift card" in html
    assert "- Gift card\n" in text
    assert "None" not in html + text


# --- the copy -----------------------------------------------------------------------------------


def _copy(key: str, language: str) -> tuple[str, str]:
    subject, _, text = render(get_template(key, language), minimal_context())
    return subject, text


@pytest.mark.parametrize("key", KEYS)
def test_copy_is_written_for_each_language(key: str) -> None:
    subjects = {language: _copy(key, language)[0] for language in SUPPORTED_LANGUAGES}
    texts = {language: _copy(key, language)[1] for language in SUPPORTED_LANGUAGES}
    assert len(set(subjects.values())) == len(SUPPORTED_LANGUAGES), subjects
    assert len(set(texts.values())) == len(SUPPORTED_LANGUAGES)
    for language in SUPPORTED_LANGUAGES:
        if language != "en":
            assert subjects[language] != subjects["en"]
            assert texts[language] != texts["en"]


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("source", TEMPLATE_SOURCE_TYPES)
def test_each_step_has_its_own_copy(source: str, language: str) -> None:
    steps = [_copy(f"{source}/{step}", language) for step in (1, 2, 3)]
    assert len({subject for subject, _ in steps}) == 3
    assert len({text for _, text in steps}) == 3


@pytest.mark.parametrize("source", TEMPLATE_SOURCE_TYPES)
def test_each_source_type_has_its_own_copy(source: str) -> None:
    for language, step in itertools.product(SUPPORTED_LANGUAGES, (1, 2, 3)):
        mine = _copy(f"{source}/{step}", language)[0]
        others = {_copy(f"{other}/{step}", language)[0] for other in TEMPLATE_SOURCE_TYPES} - {mine}
        assert len(others) == len(TEMPLATE_SOURCE_TYPES) - 1


@pytest.mark.parametrize(
    ("language", "formal", "informal"),
    [
        ("de", r"\b(Sie|Ihre?[nmrs]?)\b", r"\b(du|dich|dir|dein\w*)\b"),
        ("fr", r"\b(vous|votre|vos)\b", r"\b(tu|toi|ton|ta|tes)\b"),
        ("es", r"\b(su|sus|usted|le)\b", r"\b(tú|tu|tus|te)\b"),
        ("nl", r"\b(u|uw)\b", r"\b(je|jij|jouw)\b"),
    ],
)
def test_formal_address(language: str, formal: str, informal: str) -> None:
    for key in KEYS:
        text = _copy(key, language)[1]
        assert re.search(formal, text, re.IGNORECASE), key
        assert not re.search(informal, text), key


def test_warm_up_compiles_every_predefined_template_once() -> None:
    _compiled.cache_clear()  # as in a new process
    warm_up()
    before = _compiled.cache_info()
    for key in template_keys():
        for language in languages_for(key):
            render_step({"template": key}, sample_context(), language)
    after = _compiled.cache_info()
    assert after.misses == before.misses  # nothing left to compile on the first follow-up
    assert after.hits - before.hits == 3 * sum(len(languages_for(k)) for k in template_keys())
