"""Dynamic injection: steps a rule adds to one run's definition after a step completed
(``dynamic_injection`` on the step, rule or expression form).

The injected steps are kept with the run, in ``metadata["injected_steps"]`` (a list of
``{"after": <step name>, "step": <step configuration>}``, in the order they were injected),
and committed with the step that injected them; the run's definition is its snapshot with
those steps inserted (:func:`injected_snapshot`), compiled like any snapshot, so a reload in
another process runs the same steps. A step whose name the run already has is not injected
again (a rule that holds every time a looping step completes inserts its steps once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ruvon.definition.schema import DynamicInjection, InjectionRule
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.steps.routing import expression_context

__all__ = ["INJECTED_KEY", "Injection", "injected_snapshot", "injections_for"]

INJECTED_KEY = "injected_steps"
"""Workflow metadata: the steps injected into this run, in order."""

_MISSING = object()


class Injection:
    """The steps one rule inserts, and where."""

    __slots__ = ("after", "audit", "steps")

    def __init__(self, after: str, steps: list[dict[str, Any]], audit: bool) -> None:
        self.after = after
        self.steps = steps
        self.audit = audit

    def entries(self) -> list[dict[str, Any]]:
        """The metadata entries of these steps (see the module docstring)."""
        return [{"after": self.after, "step": step} for step in self.steps]


def _value_at(state: Any, path: str) -> Any:
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "state":
        parts = parts[1:]
    value: Any = state
    for part in parts:
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, BaseModel):
            value = getattr(value, part, _MISSING)
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _holds(rule: InjectionRule, state: Any, evaluator: ExpressionEvaluator) -> bool:
    if rule.condition is not None:
        return bool(evaluator.evaluate(rule.condition, expression_context(state)))
    value = _value_at(state, str(rule.condition_key))
    if value is _MISSING:
        return False
    if rule.value_is_not is not None:
        return value not in rule.value_is_not
    if rule.value_match is not None:
        return bool(value == rule.value_match)
    return bool(value)


def injections_for(
    step_name: str,
    injection: DynamicInjection,
    state: Any,
    evaluator: ExpressionEvaluator,
    *,
    org_id: str | None,
    known_steps: Sequence[str],
) -> list[Injection]:
    """The rules of ``step_name``'s ``dynamic_injection`` that hold for ``state``, with the
    steps the run does not have yet."""
    known = set(known_steps)
    found = []
    for rule in injection.rules:
        if rule.allowed_tenants is not None and org_id not in rule.allowed_tenants:
            continue
        if not _holds(rule, state, evaluator):
            continue
        steps = [dict(config) for config in rule.steps_to_insert if config["name"] not in known]
        known.update(config["name"] for config in steps)
        if steps:
            found.append(Injection(rule.insert_after or step_name, steps, rule.audit_injection))
    return found


def injected_snapshot(
    snapshot: Mapping[str, Any], injected: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``snapshot`` with the ``injected`` steps inserted: each right after the step it names
    (after the steps already inserted there, so they keep their order). ``ValueError`` for a
    step to insert after that the run does not have."""
    steps = [dict(step) for step in snapshot.get("steps", [])]
    for entry in injected:
        names = [step.get("name") for step in steps]
        after = entry["after"]
        if after not in names:
            raise ValueError(
                f"cannot inject step {entry['step'].get('name')!r} after {after!r}: no such step"
            )
        position = names.index(after) + 1
        # After the steps injected after ``after`` before this one.
        while position < len(steps) and steps[position].get("_injected_after") == after:
            position += 1
        steps.insert(position, {**entry["step"], "_injected_after": after})
    return {**snapshot, "steps": [_clean(step) for step in steps]}


def _clean(step: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in step.items() if key != "_injected_after"}
