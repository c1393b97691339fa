"""Jinja2TemplateEngine: native values, recursive rendering, strict undefined and the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from ruvon.errors import TemplateError
from ruvon.implementations.templating.jinja2 import Jinja2TemplateEngine
from ruvon.providers.template_engine import TemplateEngine


class Address(BaseModel):
    city: str = "Lyon"


class OrderState(BaseModel):
    cart_items: list[str] = ["apple", "pear"]
    amount: int = 42
    paid: bool = True
    meta: dict[str, Any] = {"a": 1}
    address: Address = Address()
    note: str | None = None


CONTEXT: dict[str, Any] = {"state": OrderState(), "workflow_id": "wf-1", "parameters": {"n": 3}}


def render(template: Any, context: dict[str, Any] | None = None) -> Any:
    return Jinja2TemplateEngine().render(template, CONTEXT if context is None else context)


def test_satisfies_the_protocol() -> None:
    assert isinstance(Jinja2TemplateEngine(), TemplateEngine)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ state.cart_items }}", ["apple", "pear"]),
        ("{{ state.amount }}", 42),
        ("{{ state.paid }}", True),
        ("{{ state.meta }}", {"a": 1}),
        ("{{ state.note }}", None),
        ("{{ state.amount * 2 }}", 84),
        ("{{ state.cart_items | length }}", 2),
        ("{{ parameters.n }}", 3),
        ("  {{ state.amount }}\n", 42),
        ("{{state.amount}}", 42),
        ("{{- state.amount -}}", 42),
        ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
        ("{{ [1, 2] }}", [1, 2]),
        ("{{ -1 }}", -1),
    ],
)
def test_single_expression_keeps_the_native_type(template: str, expected: Any) -> None:
    value = render(template)
    assert value == expected
    assert type(value) is type(expected)


def test_native_string_is_not_reinterpreted() -> None:
    # Unlike jinja2.nativetypes, a string value that looks like a number stays a string.
    assert render("{{ code }}", {"code": "007"}) == "007"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Order {{ workflow_id }} for {{ state.amount }}", "Order wf-1 for 42"),
        ("{{ state.amount }}{{ state.amount }}", "4242"),
        ("{{ state.amount }} {{ state.paid }}", "42 True"),
        ("City: {{ state.address.city }}", "City: Lyon"),
        ("{% if state.paid %}paid{% else %}due{% endif %}", "paid"),
        ("{% for item in state.cart_items %}{{ item }},{% endfor %}", "apple,pear,"),
        ("{{ state.amount }} {# comment #}", "42 "),
        ("plain text", "plain text"),
        ("body\n", "body\n"),
        ("<b>{{ '<i>' }}</b>", "<b><i></b>"),
    ],
)
def test_other_strings_render_to_strings(template: str, expected: str) -> None:
    assert render(template) == expected


def test_dicts_and_lists_render_recursively() -> None:
    template = {
        "url": "https://api/{{ workflow_id }}",
        "json": {"items": "{{ state.cart_items }}", "total": "{{ state.amount }}"},
        "{{ workflow_id }}": ["{{ state.paid }}", ("{{ parameters.n }}", 7), None],
        "count": 5,
    }
    assert render(template) == {
        "url": "https://api/wf-1",
        "json": {"items": ["apple", "pear"], "total": 42},
        "wf-1": [True, (3, 7), None],
        "count": 5,
    }


@pytest.mark.parametrize("value", [5, 1.5, None, True, b"{{ x }}", OrderState()])
def test_other_values_are_returned_unchanged(value: Any) -> None:
    assert render(value) is value


def test_pydantic_state_attribute_access() -> None:
    assert render("{{ state.address.city }}") == "Lyon"
    assert render("{{ state.address }}") == Address()


@pytest.mark.parametrize(
    ("template", "variable"),
    [
        ("{{ missing }}", "'missing' is undefined"),
        ("Hello {{ missing }}", "'missing' is undefined"),
        ("{{ missing.attr }}", "'missing' is undefined"),
        ("{{ state.nope }}", "no attribute 'nope'"),
        ({"a": ["{{ missing }}"]}, "'missing' is undefined"),
    ],
)
def test_undefined_variables_raise(template: Any, variable: str) -> None:
    with pytest.raises(TemplateError, match=variable):
        render(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "x {{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ state.__class__ }}",
        "{{ state.cart_items.append('x') }}",
        "{{ state.meta.update({'b': 2}) }}",
    ],
)
def test_sandbox_violations_raise(template: str) -> None:
    with pytest.raises(TemplateError, match="unsafe") as caught:
        render(template)
    assert template in str(caught.value)
    assert OrderState().cart_items == ["apple", "pear"]


@pytest.mark.parametrize("template", ["{{ unclosed", "{% for %}", "{{ a b }}", "{% endif %}"])
def test_syntax_errors_raise_with_the_template(template: str) -> None:
    with pytest.raises(TemplateError, match="Invalid template") as caught:
        render(template)
    assert repr(template) in str(caught.value)
    assert "line 1" in str(caught.value)


def test_runtime_errors_raise_template_error() -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}")


def test_render_string_template_always_returns_a_string() -> None:
    engine = Jinja2TemplateEngine()
    assert engine.render_string_template("{{ state.amount }}", CONTEXT) == "42"
    assert engine.render_string_template("{{ state.cart_items }}", CONTEXT) == "['apple', 'pear']"
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        engine.render_string_template("{{ missing }}", {})


def test_constructor_context_is_the_default() -> None:
    engine = Jinja2TemplateEngine({"name": "Ann", "n": 1})
    assert engine.render("Hi {{ name }}") == "Hi Ann"
    assert engine.render("{{ n }}", {"n": 2}) == 2
    assert engine.render_string_template("{{ name }}{{ n }}") == "Ann1"


def test_compiled_templates_are_cached_and_reusable() -> None:
    engine = Jinja2TemplateEngine()
    assert engine.render("{{ x }}", {"x": 1}) == 1
    assert engine.render("{{ x }}", {"x": [2]}) == [2]
    assert engine.render("a{{ x }}", {"x": 1}) == "a1"
    assert engine.render("a{{ x }}", {"x": 2}) == "a2"
    assert len(engine._cache) == 2
