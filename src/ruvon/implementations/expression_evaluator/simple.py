"""The default :class:`~ruvon.providers.expression_evaluator.ExpressionEvaluator`: a whitelist
over Python's ``ast``, never ``eval``.

An expression is parsed once, checked against the whitelist, and turned into a tree of small
closures (cached per expression string), so a DECISION route costs a lookup and a few calls.

Supported: names from the context (falling back to fields of ``state``), attribute and subscript
access on models, objects and dicts, literals, comparisons (chains included), ``and/or/not``,
arithmetic, ``a if c else b`` and calls to the functions in :data:`SAFE_FUNCTIONS`. Anything
else, and any name or attribute starting with ``_``, raises :class:`ExpressionError`.

Missing names, attributes and keys read as ``None``; an ordering comparison (``< <= > >=``)
with ``None`` on either side is ``False``, and ``x in None`` is ``False``.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ruvon.errors import ExpressionError

__all__ = ["SAFE_FUNCTIONS", "SimpleExpressionEvaluator"]

_Context = Mapping[str, Any]
_Node = Callable[[_Context], Any]

SAFE_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    f.__name__: f for f in (len, min, max, abs, any, all, str, int, float, bool, round, sum, sorted)
}
"""The only functions an expression may call."""

# ``key=`` is left out on purpose: it would let an expression call a callable read from state.
_SAFE_KEYWORDS: Final[Mapping[str, frozenset[str]]] = {
    "min": frozenset({"default"}),
    "max": frozenset({"default"}),
    "sorted": frozenset({"reverse"}),
    "sum": frozenset({"start"}),
    "round": frozenset({"ndigits"}),
    "int": frozenset({"base"}),
}

# Not callable from an expression, but readable; these lead from plain data to interpreter
# internals (frames, globals, code), so they are refused like underscore names.
_UNSAFE_ATTRIBUTES: Final = frozenset(
    {"f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next"}
    | {"gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "mro"}
)

_MAX_POWER_BITS: Final = 100_000
_MAX_SEQUENCE_LENGTH: Final = 1_000_000
_CACHE_SIZE: Final = 2048
_MISSING: Final = object()

_ORDERING: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _contains(container: Any, item: Any) -> bool:
    return container is not None and item in container


def _not_contains(container: Any, item: Any) -> bool:
    return container is None or item not in container


# ``in`` operators take (left, right) here, the reverse of operator.contains.
_OTHER_COMPARISONS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: _contains(b, a),
    ast.NotIn: lambda a, b: _not_contains(b, a),
}


def _power(base: Any, exponent: Any) -> Any:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and exponent * abs(base).bit_length() > _MAX_POWER_BITS
    ):
        raise ExpressionError(f"{base!r} ** {exponent!r} would be too large to compute")
    return base**exponent


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if (
            isinstance(seq, (str, bytes, list, tuple))
            and isinstance(count, int)
            and len(seq) * count > _MAX_SEQUENCE_LENGTH
        ):
            raise ExpressionError(f"repeating a sequence {count} times would be too large")
    return left * right


def _modulo(left: Any, right: Any) -> Any:
    # "%*d" % (10**9, 1) builds a gigabyte string; % is only arithmetic here.
    if isinstance(left, (str, bytes)):
        raise ExpressionError("string formatting with % is not supported")
    return left % right


_BINARY: Final[Mapping[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Pow: _power,
}

_UNARY: Final[Mapping[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}


def _get_attribute(obj: Any, name: str) -> Any:
    """``obj.name`` for models and objects, ``obj[name]`` for mappings; ``None`` if missing."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _get_item(obj: Any, key: Any) -> Any:
    """``obj[key]``; a string key on a model or object reads the attribute; ``None`` if missing."""
    if obj is None:
        return None
    if isinstance(key, str) and not isinstance(obj, (Mapping, Sequence)):
        _check_attribute_name(key)
        return getattr(obj, key, None)
    try:
        return obj[key]
    except (KeyError, IndexError):
        return None


def _lookup(context: _Context, name: str) -> Any:
    value = context.get(name, _MISSING)
    if value is not _MISSING:
        return value
    # Bare names are the state's fields, even when the caller passed only {"state": ...}.
    state = context.get("state")
    return None if name == "state" else _get_attribute(state, name)


def _check_attribute_name(name: str) -> None:
    if name.startswith("_"):
        raise ExpressionError(f"names starting with '_' are not allowed ({name!r})")
    if name in _UNSAFE_ATTRIBUTES:
        raise ExpressionError(f"attribute {name!r} is not allowed")


class _Rejected(Exception):
    """Raised while compiling; turned into an ExpressionError that names the expression."""

    def __init__(self, reason: str, node: ast.expr) -> None:
        column = node.col_offset
        if isinstance(node, ast.Attribute) and node.end_col_offset is not None:
            # Point at the attribute itself, not at the start of ``a.b.c``.
            column = node.end_col_offset - len(node.attr)
        super().__init__(f"{reason} (column {column + 1})")


def _build(node: ast.expr) -> _Node:
    """Check ``node`` against the whitelist and return a closure that evaluates it."""
    builder = _BUILDERS.get(type(node))
    if builder is None:
        raise _Rejected(f"{_describe(node)} is not allowed", node)
    return builder(node)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.NamedExpr: "assignment (:=)",
        ast.JoinedStr: "an f-string",
        ast.Starred: "unpacking with *",
        ast.Await: "await",
    }
    return names.get(type(node), f"{type(node).__name__} syntax")


def _build_constant(node: ast.Constant) -> _Node:
    value = node.value
    return lambda _ctx: value


def _build_name(node: ast.Name) -> _Node:
    name = node.id
    if name.startswith("_"):
        raise _Rejected(f"names starting with '_' are not allowed ({name!r})", node)
    return lambda ctx: _lookup(ctx, name)


def _build_attribute(node: ast.Attribute) -> _Node:
    name = node.attr
    try:
        _check_attribute_name(name)
    except ExpressionError as exc:
        raise _Rejected(str(exc), node) from None
    target = _build(node.value)
    return lambda ctx: _get_attribute(target(ctx), name)


def _build_subscript(node: ast.Subscript) -> _Node:
    target = _build(node.value)
    key = _build(node.slice)
    return lambda ctx: _get_item(target(ctx), key(ctx))


def _build_slice(node: ast.Slice) -> _Node:
    parts = [_build_optional(part) for part in (node.lower, node.upper, node.step)]
    return lambda ctx: slice(*(part(ctx) for part in parts))


def _build_optional(node: ast.expr | None) -> _Node:
    return (lambda _ctx: None) if node is None else _build(node)


def _build_sequence(node: ast.List | ast.Tuple | ast.Set) -> _Node:
    items = [_build(item) for item in node.elts]
    kind: Callable[[Any], Any] = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
    return lambda ctx: kind(item(ctx) for item in items)


def _build_dict(node: ast.Dict) -> _Node:
    if any(key is None for key in node.keys):
        raise _Rejected("unpacking with ** is not allowed", node)
    pairs = [(_build_optional(k), _build(v)) for k, v in zip(node.keys, node.values, strict=True)]
    return lambda ctx: {key(ctx): value(ctx) for key, value in pairs}


def _build_bool_op(node: ast.BoolOp) -> _Node:
    operands = [_build(value) for value in node.values]
    if isinstance(node.op, ast.And):

        def all_true(ctx: _Context) -> Any:
            value: Any = True
            for operand in operands:
                value = operand(ctx)
                if not value:
                    return value
            return value

        return all_true

    def first_true(ctx: _Context) -> Any:
        value: Any = False
        for operand in operands:
            value = operand(ctx)
            if value:
                return value
        return value

    return first_true


def _build_unary(node: ast.UnaryOp) -> _Node:
    function = _UNARY.get(type(node.op))
    if function is None:
        raise _Rejected(f"operator {type(node.op).__name__} is not allowed", node)
    operand = _build(node.operand)
    return lambda ctx: function(operand(ctx))


def _build_binary(node: ast.BinOp) -> _Node:
    function = _BINARY.get(type(node.op))
    if function is None:
        raise _Rejected(f"operator {type(node.op).__name__} is not allowed", node)
    left, right = _build(node.left), _build(node.right)
    return lambda ctx: function(left(ctx), right(ctx))


def _comparison(op: ast.cmpop) -> Callable[[Any, Any], Any]:
    ordering = _ORDERING.get(type(op))
    if ordering is None:
        return _OTHER_COMPARISONS[type(op)]
    return lambda a, b: False if a is None or b is None else ordering(a, b)


def _build_compare(node: ast.Compare) -> _Node:
    first = _build(node.left)
    steps = [
        (_comparison(op), _build(right))
        for op, right in zip(node.ops, node.comparators, strict=True)
    ]
    if len(steps) == 1:
        # The common case (``state.amount > 1000``) skips the chain loop.
        ((compare, right),) = steps
        return lambda ctx: compare(first(ctx), right(ctx))

    def chain(ctx: _Context) -> Any:
        left = first(ctx)
        result: Any = True
        for compare, right_node in steps:
            right = right_node(ctx)
            result = compare(left, right)
            if not result:
                return result
            left = right
        return result

    return chain


def _build_if(node: ast.IfExp) -> _Node:
    test, body, orelse = _build(node.test), _build(node.body), _build(node.orelse)
    return lambda ctx: body(ctx) if test(ctx) else orelse(ctx)


def _build_call(node: ast.Call) -> _Node:
    if isinstance(node.func, ast.Attribute):
        raise _Rejected(f"method calls are not allowed (.{node.func.attr}())", node.func)
    name = node.func.id if isinstance(node.func, ast.Name) else None
    function = SAFE_FUNCTIONS.get(name or "")
    if name is None or function is None:
        allowed = ", ".join(SAFE_FUNCTIONS)
        called = f"'{name}'" if name else "this"
        raise _Rejected(f"calling {called} is not allowed; allowed functions: {allowed}", node)
    args = [_build(arg) for arg in node.args]
    keywords: dict[str, _Node] = {}
    for keyword in node.keywords:
        arg = keyword.arg
        if arg is None or arg not in _SAFE_KEYWORDS.get(name, frozenset()):
            label = f"{arg}=" if arg else "**"
            raise _Rejected(f"argument {label} is not allowed in {name}()", node)
        keywords[arg] = _build(keyword.value)
    if not keywords:
        return lambda ctx: function(*[arg(ctx) for arg in args])
    return lambda ctx: function(
        *[arg(ctx) for arg in args], **{key: value(ctx) for key, value in keywords.items()}
    )


_BUILDERS: Final[Mapping[type[ast.AST], Callable[[Any], _Node]]] = {
    ast.Constant: _build_constant,
    ast.Name: _build_name,
    ast.Attribute: _build_attribute,
    ast.Subscript: _build_subscript,
    ast.Slice: _build_slice,
    ast.List: _build_sequence,
    ast.Tuple: _build_sequence,
    ast.Set: _build_sequence,
    ast.Dict: _build_dict,
    ast.BoolOp: _build_bool_op,
    ast.UnaryOp: _build_unary,
    ast.BinOp: _build_binary,
    ast.Compare: _build_compare,
    ast.IfExp: _build_if,
    ast.Call: _build_call,
}


def _syntax_error(expression: str, exc: SyntaxError) -> ExpressionError:
    stripped = expression.strip()
    if not stripped:
        reason = "the expression is empty"
    elif exc.offset:
        # Offsets are into the stripped text; report them in the text the user wrote.
        indent = len(expression) - len(expression.lstrip()) if exc.lineno == 1 else 0
        line = f"line {exc.lineno}, " if "\n" in stripped else ""
        reason = f"{exc.msg} at {line}column {exc.offset + indent}"
    else:
        reason = f"{exc.msg} at the end of the expression"
    return ExpressionError(f"Invalid expression {expression!r}: {reason}")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(expression: str) -> _Node:
    """Parse and check ``expression`` once; later calls with the same string hit the cache."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(expression, exc) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"Invalid expression {expression!r}: {exc}") from None
    try:
        return _build(tree.body)
    except _Rejected as exc:
        raise ExpressionError(f"Expression {expression!r} is not allowed: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"Expression {expression!r} is nested too deeply") from None


def _compiled(expression: str) -> _Node:
    # Checked outside the cache: an unhashable non-string would fail inside lru_cache.
    if not isinstance(expression, str):
        raise ExpressionError(f"Expression must be a string, not {type(expression).__name__}")
    return _compile(expression)


class SimpleExpressionEvaluator:
    """Evaluates conditions such as ``state.amount > 1000`` safely, without ``eval``.

    ``state`` is the original constructor argument: when :meth:`evaluate` gets no context it
    evaluates against ``{"state": state}``.
    """

    def __init__(self, state: Any = None) -> None:
        self._state = state

    def validate(self, expression: str) -> None:
        """Raise :class:`ExpressionError` if ``expression`` does not parse or is not allowed."""
        _compiled(expression)

    def evaluate(self, expression: str, context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate ``expression`` and return its raw value (callers apply ``bool()``).

        ``context`` is ``{"state": ..., **fields}``; bare names not in it are read from
        ``state``. Raises :class:`ExpressionError` if the expression is not allowed or fails.
        """
        node = _compiled(expression)
        try:
            return node({"state": self._state} if context is None else context)
        except ExpressionError as exc:
            raise ExpressionError(f"Cannot evaluate expression {expression!r}: {exc}") from None
        except Exception as exc:
            raise ExpressionError(
                f"Cannot evaluate expression {expression!r}: {type(exc).__name__}: {exc}"
            ) from exc
