"""What the step cycle decides around running a step: whether the call's input fits the
step, whether what the step produced can be committed (result, state), and where the run goes
next (``next:``, routes, jumps, the dependency graph)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ruvon._workflow_failure import FailurePath
from ruvon.dag import ready_steps, skipped_by_route
from ruvon.definition.compiled import CompiledStep, CompiledWorkflow
from ruvon.definition.validate import END
from ruvon.errors import (
    InvalidInputError,
    JumpTargetError,
    NoRouteMatchedError,
    StateValidationError,
)
from ruvon.injection import INJECTED_KEY, injected_snapshot, injections_for
from ruvon.providers.persistence import AuditEvent
from ruvon.serialization import Encoded
from ruvon.state import (
    check_storable,
    describe_errors,
    merge_state,
    settle_state,
    unmerged_keys,
)
from ruvon.steps import StepOutcome, StepRun, StepRunner
from ruvon.steps.routing import choose_route

__all__ = ["StepChecks"]

logger = logging.getLogger("ruvon.workflow")

_warned_unmerged: set[tuple[str, str, str]] = set()
"""(workflow type, step, key) already reported as left out of the state: warned once."""


@dataclass(frozen=True, slots=True)
class PendingInjection:
    """Steps injected by the step being completed, not committed yet."""

    before: CompiledWorkflow
    """The run's definition without them (put back if the step does not commit)."""
    entries: list[dict[str, Any]]
    """Every injected step of the run, these included (``metadata["injected_steps"]``)."""
    audit: list[AuditEvent]


class StepChecks(FailurePath):
    """Input, result and state checks, and the choice of the next step."""

    _injecting: PendingInjection | None = None

    def _inject(self, step: CompiledStep, state: Any) -> None:
        """Insert the steps whose ``dynamic_injection`` rules hold into this run's definition
        (committed with the step; see :mod:`ruvon.injection`)."""
        injection = step.definition.dynamic_injection
        assert injection is not None
        found = injections_for(
            step.name,
            injection,
            state,
            self._evaluator,
            org_id=self.org_id,
            known_steps=[known.name for known in self._compiled.steps],
        )
        if not found:
            return
        compiler = self._services.compiler
        if compiler is None:
            raise RuntimeError(
                f"Step '{step.name}' injects steps, but this workflow cannot compile them "
                "(workflows built by WorkflowBuilder can)"
            )
        entries = [*self.metadata.get(INJECTED_KEY, [])]
        for item in found:
            entries.extend(item.entries())
        try:
            snapshot = injected_snapshot(self.definition_snapshot, entries)
        except ValueError as exc:
            raise ValueError(f"Step '{step.name}': {exc}") from None
        compiled = compiler(snapshot, self.id)
        audit = [
            AuditEvent(
                "DYNAMIC_INJECTION",
                step_name=step.name,
                data={
                    "step_name": config["name"],
                    "function": config.get("function"),
                    "inserted_after": item.after,
                },
            )
            for item in found
            if item.audit
            for config in item.steps
        ]
        self._injecting = PendingInjection(self._compiled, entries, audit)
        self._compiled = compiled

    def _drop_injection(self) -> None:
        """Forget steps injected by a step that did not commit."""
        if self._injecting is not None:
            self._compiled = self._injecting.before
            self._injecting = None

    def _settle(self, step: CompiledStep, result: dict[str, Any]) -> tuple[Any, Encoded]:
        """The state after ``step`` returned ``result``, validated, with its JSON form.

        Fails the step (before anything is committed) if the result cannot be stored, if the
        merged state does not validate — in-place changes included — or if the state cannot
        be stored. Result keys the model ignores are reported once per step and key.
        """
        model = self.state_model
        try:
            if result:
                check_storable(step.name, result)
                state = merge_state(self.state, result, model)
                if model is not dict:
                    self._warn_unmerged(step, result)
            elif model is dict:
                state = self.state
            else:
                # Nothing returned, but the step may have changed the state in place.
                state = merge_state(self.state, {}, model)
        except ValidationError as exc:
            raise StateValidationError(
                describe_errors(exc), model=model.__name__, step_name=step.name
            ) from None
        return settle_state(state, model, step.name)

    def _warn_unmerged(self, step: CompiledStep, result: Mapping[str, Any]) -> None:
        if result.keys() <= self.state_model.__pydantic_fields__.keys():
            return  # every key is a field (the common case, checked in C)
        for key in unmerged_keys(result, self.state_model):
            seen = (self.workflow_type, step.name, key)
            if seen in _warned_unmerged:
                continue
            _warned_unmerged.add(seen)
            logger.warning(
                "Step '%s' of %s returned key '%s', which %s does not have: it is kept in the "
                "step's result (returned, audited, previous_step_result) but not in the state",
                step.name,
                self.workflow_type,
                key,
                self.state_model.__name__,
            )

    def _validate_input(
        self, step: CompiledStep, runner: StepRunner | None, run: StepRun
    ) -> BaseModel | None:
        """The call's input checked against the step's ``required_input`` and ``input_model``
        (InvalidInputError, nothing changed), unless the step's kind defers it."""
        if runner is not None and runner.defers_input(step, run):
            return None  # the step will wait; its input is checked when it arrives
        definition = step.definition
        user_input = run.user_input
        # ``required_input`` holds with or without an input_model.
        missing = [key for key in definition.required_input if key not in user_input]
        if missing:
            raise InvalidInputError(
                step.name,
                f"missing required input {missing}",
                [{"field": key, "message": "Field required", "type": "missing"} for key in missing],
            )
        if step.input_model is None:
            return None
        try:
            return step.input_model.model_validate(dict(user_input))
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "input",
                    "message": err["msg"],
                    "type": err["type"],
                }
                for err in exc.errors()
            ]
            detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
            raise InvalidInputError(step.name, detail, errors) from None

    def _successor(self, step: CompiledStep) -> int:
        """Where the workflow goes after ``step`` completes without a jump: its ``next:``
        (END is past the last step), else the following step in the file."""
        follow = step.definition.next
        if follow is None:
            return step.index + 1
        if follow == END:
            return len(self._compiled.steps)
        return self._compiled.index_by_name[follow]

    def _next_in_graph(
        self, step: CompiledStep, outcome: StepOutcome, target: int | None
    ) -> tuple[int, list[str]]:
        """DAG mode: where the run goes after ``step`` completes (the first ready step in file
        order, or the route's or jump's target), and the steps a route choice left out."""
        assert self._dag is not None
        steps = self._compiled.steps
        chosen = steps[target].name if target is not None else None
        destinations = [route.destination for route in outcome.routes]
        done = self.progress.step_completed(step.name, outcome.result)
        skipped = skipped_by_route(steps, self._dag, done, destinations, chosen)
        after = done.step_completed(step.name, outcome.result, skipped)
        ready = ready_steps(steps, self._dag, after)
        if chosen is not None and (chosen in ready or outcome.jump_to is not None):
            return target, skipped  # type: ignore[return-value]
        if ready:
            return self._compiled.index_by_name[ready[0]], skipped
        return len(steps), skipped

    def _route(self, step: CompiledStep, outcome: StepOutcome, state: Any) -> int | None:
        """The index to continue at if the step jumps, else None."""
        target = outcome.jump_to
        if target is None and outcome.wait is None:
            target = choose_route(outcome.routes, state, self._evaluator)
            if target is None and outcome.routes_required:
                raise NoRouteMatchedError(
                    f"No route of DECISION step '{step.name}' matched and it has no default."
                )
        if target is None:
            return None
        index = self._compiled.step_index(target)
        if index is None:
            raise JumpTargetError(target)
        return index
