"""SimpleExpressionEvaluator: every supported construct, every forbidden one, and the caching."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from ruvon.errors import ExpressionError
from ruvon.implementations.expression_evaluator import simple
from ruvon.implementations.expression_evaluator.simple import (
    SAFE_FUNCTIONS,
    SimpleExpressionEvaluator,
)
from ruvon.providers.expression_evaluator import ExpressionEvaluator


class Customer(BaseModel):
    tier: str = "gold"
    tags: list[str] = ["vip", "eu"]
    manager: dict[str, Any] = {"name": "Ann", "level": 3}


class LoanState(BaseModel):
    amount: int = 5000
    rate: float = 0.5
    name: str = "alice"
    approved: bool = True
    note: str | None = None
    items: list[int] = [3, 1, 2]
    customer: Customer = Customer()


def _context(state: Any) -> dict[str, Any]:
    fields = state.model_dump() if isinstance(state, BaseModel) else dict(state)
    return {"state": state, **fields}


MODEL = LoanState()
DICT_STATE = MODEL.model_dump()


def evaluate(expression: str, state: Any = MODEL) -> Any:
    return SimpleExpressionEvaluator().evaluate(expression, _context(state))


def test_satisfies_the_protocol() -> None:
    assert isinstance(SimpleExpressionEvaluator(), ExpressionEvaluator)


@pytest.mark.parametrize("state", [MODEL, DICT_STATE], ids=["model", "dict"])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # names, attributes, subscripts
        ("state.amount", 5000),
        ("amount", 5000),
        ("state.customer.tier", "gold"),
        ("state.customer.manager.name", "Ann"),
        ("state.customer.manager['level']", 3),
        ("state.items[0]", 3),
        ("state.items[-1]", 2),
        ("state.items[1:]", [1, 2]),
        ("state.items[::2]", [3, 2]),
        ("state['amount']", 5000),
        ("state.customer.tags[1]", "eu"),
        # literals
        ("42", 42),
        ("1.5", 1.5),
        ("'text'", "text"),
        ("True", True),
        ("None", None),
        ("[1, 2]", [1, 2]),
        ("(1, 2)", (1, 2)),
        ("{'a': 1}", {"a": 1}),
        ("{1, 2}", {1, 2}),
        # comparisons
        ("state.amount == 5000", True),
        ("state.amount != 5000", False),
        ("state.amount < 1000", False),
        ("state.amount <= 5000", True),
        ("state.amount > 1000", True),
        ("state.amount >= 5001", False),
        ("'vip' in state.customer.tags", True),
        ("'us' not in state.customer.tags", True),
        ("state.note is None", True),
        ("state.note is not None", False),
        ("1000 < state.amount < 10000", True),
        ("1000 < state.amount < 2000", False),
        ("1 < 2 < 3 < 2", False),
        # boolean logic returns operands, like Python
        ("state.approved and state.amount > 1000", True),
        ("state.note or 'default'", "default"),
        ("state.amount and state.name", "alice"),
        ("not state.approved", False),
        ("state.note and state.note.missing", None),
        # arithmetic
        ("state.amount + 1", 5001),
        ("state.amount - 1", 4999),
        ("state.amount * 2", 10000),
        ("state.amount / 2", 2500.0),
        ("state.amount // 3", 1666),
        ("state.amount % 7", 5000 % 7),
        ("2 ** 10", 1024),
        ("-state.amount", -5000),
        ("+state.rate", 0.5),
        ("(state.amount + 1000) * 2", 12000),
        ("'a' + state.name", "aalice"),
        # conditional expression
        ("'big' if state.amount > 1000 else 'small'", "big"),
        ("'big' if state.amount > 9000 else 'small'", "small"),
        # whitelisted functions
        ("len(state.items)", 3),
        ("min(state.items)", 1),
        ("max(state.items)", 3),
        ("max([], default=0)", 0),
        ("abs(-state.amount)", 5000),
        ("any([False, state.approved])", True),
        ("all([True, state.note])", False),
        ("str(state.amount)", "5000"),
        ("int('7')", 7),
        ("int('ff', base=16)", 255),
        ("float('1.5')", 1.5),
        ("bool(state.note)", False),
        ("round(state.rate * 3, 1)", 1.5),
        ("round(2.567, ndigits=2)", 2.57),
        ("sum(state.items)", 6),
        ("sum(state.items, start=10)", 16),
        ("sorted(state.items)", [1, 2, 3]),
        ("sorted(state.items, reverse=True)", [3, 2, 1]),
    ],
)
def test_supported_constructs(state: Any, expression: str, expected: Any) -> None:
    assert evaluate(expression, state) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "state.missing",
        "missing",
        "state.customer.missing.deeper",
        "state.customer.manager.missing",
        "state.items[10]",
        "state['missing']",
        "state.note.anything",
    ],
)
def test_missing_values_are_none(expression: str) -> None:
    assert evaluate(expression) is None
    assert evaluate(expression, DICT_STATE) is None


@pytest.mark.parametrize(
    "expression",
    [
        "state.missing > 1000",
        "state.missing < 1000",
        "state.note <= 'a'",
        "1000 >= state.missing",
        "None < None",
        "0 < state.missing < 10",
    ],
)
def test_ordering_with_none_is_false(expression: str) -> None:
    assert evaluate(expression) is False


def test_equality_with_none_still_works() -> None:
    assert evaluate("state.missing == None") is True
    assert evaluate("state.missing != 1") is True


def test_membership_in_none_is_false() -> None:
    assert evaluate("'a' in state.missing") is False
    assert evaluate("'a' not in state.missing") is True


def test_bare_names_fall_back_to_state_fields() -> None:
    evaluator = SimpleExpressionEvaluator()
    assert evaluator.evaluate("amount > 1000", {"state": MODEL}) is True
    assert evaluator.evaluate("customer.tier", {"state": DICT_STATE}) == "gold"


def test_flat_context_names_win_over_state_fields() -> None:
    context = {"state": MODEL, "amount": 1}
    assert SimpleExpressionEvaluator().evaluate("amount", context) == 1


def test_constructor_state_is_used_without_context() -> None:
    assert SimpleExpressionEvaluator(MODEL).evaluate("state.amount > 1000") is True
    assert SimpleExpressionEvaluator({"risk_level": "high"}).evaluate("risk_level") == "high"
    assert SimpleExpressionEvaluator().evaluate("state.amount > 1000") is False


def test_explicit_context_overrides_constructor_state() -> None:
    evaluator = SimpleExpressionEvaluator({"amount": 1})
    assert evaluator.evaluate("state.amount", {"state": {"amount": 2}}) == 2


def test_attribute_access_on_plain_objects() -> None:
    class Plain:
        def __init__(self) -> None:
            self.value = 7

    assert SimpleExpressionEvaluator().evaluate("state.value", {"state": Plain()}) == 7
    assert SimpleExpressionEvaluator().evaluate("state['value']", {"state": Plain()}) == 7


def test_dict_keys_win_over_dict_methods() -> None:
    assert SimpleExpressionEvaluator().evaluate("state.items", {"state": {"a": 1}}) is None
    assert SimpleExpressionEvaluator().evaluate("state.items", {"state": {"items": [1]}}) == [1]


def test_called_names_are_always_the_builtins() -> None:
    # A state field named like a function does not replace the function.
    context = {"state": {"len": 99}, "len": 99}
    assert SimpleExpressionEvaluator().evaluate("len([1]) + len", context) == 100


def test_safe_functions_are_the_documented_whitelist() -> None:
    assert set(SAFE_FUNCTIONS) == {
        "len",
        "min",
        "max",
        "abs",
        "any",
        "all",
        "str",
        "int",
        "float",
        "bool",
        "round",
        "sum",
        "sorted",
    }


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("state.__class__", "starting with '_'"),
        ("state._private", "starting with '_'"),
        ("_hidden", "starting with '_'"),
        ("__import__('os')", "calling '__import__' is not allowed"),
        ("().__class__.__bases__", "starting with '_'"),
        ("state.name.upper()", "method calls are not allowed"),
        ("open('x')", "calling 'open' is not allowed"),
        ("eval('1')", "calling 'eval' is not allowed"),
        ("getattr(state, 'amount')", "calling 'getattr' is not allowed"),
        ("(lambda: 1)()", "calling this is not allowed"),
        ("lambda: 1", "lambda"),
        ("[x for x in state.items]", "comprehension"),
        ("{x for x in state.items}", "comprehension"),
        ("{x: 1 for x in state.items}", "comprehension"),
        ("any(x for x in state.items)", "generator expression"),
        ("(y := 1)", "assignment"),
        ("f'{state.amount}'", "f-string"),
        ("sorted(state.items, key=len)", "key= is not allowed"),
        ("max(state.items, key=abs)", "key= is not allowed"),
        ("len(*state.items)", "unpacking"),
        ("min(**state.customer.manager)", "** is not allowed"),
        ("[*state.items]", "unpacking"),
        ("{**state.customer.manager}", "unpacking"),
        ("state.amount << 2", "operator LShift"),
        ("state.amount & 1", "operator BitAnd"),
        ("~state.amount", "operator Invert"),
        ("state.gen.gi_frame", "'gi_frame' is not allowed"),
        ("await state.x", "await"),
    ],
)
def test_forbidden_constructs(expression: str, reason: str) -> None:
    evaluator = SimpleExpressionEvaluator(MODEL)
    for run in (evaluator.validate, evaluator.evaluate):
        with pytest.raises(ExpressionError) as caught:
            run(expression)
        assert repr(expression) in str(caught.value)
        assert reason in str(caught.value)


def test_import_statement_is_a_syntax_error() -> None:
    with pytest.raises(ExpressionError, match="syntax"):
        SimpleExpressionEvaluator().validate("import os")


def test_forbidden_message_points_at_the_attribute() -> None:
    with pytest.raises(ExpressionError, match=r"\(column 12\)"):
        SimpleExpressionEvaluator().validate("state.name.upper()")


def test_underscore_string_key_on_a_model_is_forbidden_at_runtime() -> None:
    # Dict keys are data, but a string subscript on an object reads an attribute.
    with pytest.raises(ExpressionError, match="starting with '_'"):
        evaluate("state['__class__']")
    assert SimpleExpressionEvaluator().evaluate("state['_id']", {"state": {"_id": 1}}) == 1


@pytest.mark.parametrize(
    ("expression", "position"),
    [
        ("state.amount >", "at the end of the expression"),
        ("state.amount > > 1", "column 16"),
        ("  a b", "column 5"),
        ("(a\n and b) c", "line 2, column"),
    ],
)
def test_syntax_errors_name_the_expression_and_position(expression: str, position: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        SimpleExpressionEvaluator().validate(expression)
    message = str(caught.value)
    assert repr(expression) in message
    assert "invalid syntax" in message
    assert position in message


@pytest.mark.parametrize("expression", ["", "   "])
def test_empty_expression_is_rejected(expression: str) -> None:
    with pytest.raises(ExpressionError, match="empty"):
        SimpleExpressionEvaluator().validate(expression)


def test_non_string_expression_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        SimpleExpressionEvaluator().validate(["state.amount"])  # type: ignore[arg-type]


def test_surrounding_whitespace_is_ignored() -> None:
    assert evaluate("  state.amount > 1000\n") is True


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("'a' < 1", "TypeError"),
        ("state.name + 1", "TypeError"),
        ("state.missing + 1", "TypeError"),
        ("state.amount / 0", "ZeroDivisionError"),
        ("int('x')", "ValueError"),
        ("2 ** 10 ** 9", "too large"),
        ("(10 ** 100) ** 2000", "too large"),
        ("'x' * 10 ** 8", "too large"),
        ("[0] * 1000 * 1000 * 10", "too large"),
        ("'%s' % state.name", "string formatting"),
        ("2.0 ** 100000", "OverflowError"),
        ("state.amount[0]", "TypeError"),
    ],
)
def test_runtime_errors_become_expression_errors(expression: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression)
    assert repr(expression) in str(caught.value)
    assert reason in str(caught.value)


def test_small_powers_and_repetitions_are_allowed() -> None:
    assert evaluate("2 ** 64") == 2**64
    assert evaluate("(-1) ** 10 ** 9") == 1
    assert evaluate("'ab' * 3") == "ababab"
    assert evaluate("2 ** -1") == 0.5


def test_deeply_nested_expression_is_rejected_not_crashed() -> None:
    with pytest.raises(ExpressionError):
        SimpleExpressionEvaluator().validate("(" * 5000 + "1" + ")" * 5000)


def test_parse_cache_reuses_the_compiled_expression() -> None:
    evaluator = SimpleExpressionEvaluator()
    expression = "state.amount > 1000 and 'cache-test' != ''"
    first = evaluator.evaluate(expression, {"state": MODEL})
    hits = simple._compile.cache_info().hits
    second = SimpleExpressionEvaluator().evaluate(expression, {"state": {"amount": 10}})
    assert (first, second) == (True, False)
    assert simple._compile.cache_info().hits == hits + 1


def test_cache_is_bounded() -> None:
    assert simple._compile.cache_info().maxsize is not None


def test_failed_parse_raises_every_time() -> None:
    evaluator = SimpleExpressionEvaluator()
    for _ in range(2):
        with pytest.raises(ExpressionError):
            evaluator.evaluate("state.__dict__")


def test_short_circuit_skips_the_failing_operand() -> None:
    assert evaluate("state.note is not None and state.note > 1") is False
    assert evaluate("state.approved or 1 / 0") is True
    assert evaluate("1 if True else 1 / 0") == 1
