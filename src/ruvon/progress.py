"""A run's progress as a durable record: where it is, what each step did, what the next step
needs. It is stored with the workflow row (the ``progress`` JSON column) by every commit, so a
reload restores all of it — ``previous_step_result`` included.

The record is plain JSON owned by the engine; stores treat it as opaque. Every change returns
a new :class:`Progress`, so a commit that fails leaves the one the ``Workflow`` object holds as
it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Progress", "StepStatus"]


def _without(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return mapping if key not in mapping else {k: v for k, v in mapping.items() if k != key}


FORMAT = 1
"""The version of the record's shape, stored as ``"v"``."""


class StepStatus(str, Enum):
    """What happened to one step of a run (a step not listed is PENDING)."""

    PENDING = "pending"
    RUNNING = "running"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    FAILED = "failed"


_COMPLETED = StepStatus.COMPLETED.value
_SKIPPED = StepStatus.SKIPPED.value


@dataclass(slots=True, eq=True)
class Progress:
    """Where a run is and what its steps did. Treat it as immutable: every transition returns a
    new record (not frozen only because a frozen dataclass's constructor costs a microsecond
    more, on every commit).

    ``cursor`` is the name of the step the next call runs (``None`` once the run has passed its
    last step); ``steps`` holds the status of every step that left PENDING, by name;
    ``last_result`` is the result of the last step that completed (the next step's
    ``context.previous_step_result``); ``dispatch`` maps a dispatched step to its token and
    ``loops`` a loop step to its cursor (both for step kinds that wait on remote work or
    iterate); ``fan_out`` holds the tasks of a PARALLEL step dispatched one by one.
    """

    cursor: str | None = None
    steps: Mapping[str, str] = field(default_factory=dict)
    last_result: dict[str, Any] | None = None
    dispatch: Mapping[str, str] = field(default_factory=dict)
    loops: Mapping[str, Any] = field(default_factory=dict)
    retries: Mapping[str, Any] = field(default_factory=dict)
    """Step name -> ``{"attempts": <failed attempts committed>, "next_at": <ISO time of the
    next attempt>}`` while a step with a retry policy is between attempts."""
    fan_out: Mapping[str, Any] = field(default_factory=dict)
    """Step name -> the PARALLEL step's tasks while they run elsewhere, each sent with a token
    of its own (:meth:`tasks_dispatched`): ``{"tasks": [[<task>, <token>], ...]`` in declared
    order, ``"done": {<task>: <outcome>}`` (:meth:`task_reported`), ``"next"``: the step's
    cursor after this batch (``None``: the last), ``"at"``: when they were sent (epoch
    seconds)}``. The step itself is in ``dispatch`` meanwhile, so the run waits for it like
    for any dispatched step."""

    # -- reading and writing ---------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, *, cursor: str | None) -> Progress:
        """The record as stored; ``cursor`` is used when the row predates the record (an empty
        ``{}``, written by schema versions before 3)."""
        if not data:
            return cls(cursor=cursor)
        return cls(
            cursor=data.get("cursor", cursor),
            steps=dict(data.get("steps") or {}),
            last_result=data.get("last_result"),
            dispatch=dict(data.get("dispatch") or {}),
            loops=dict(data.get("loops") or {}),
            retries=dict(data.get("retries") or {}),
            fan_out=dict(data.get("fan_out") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as stored (plain JSON types, given JSON-ready results)."""
        # The mappings are not copied: the record is immutable and the store encodes this
        # document at once (transitions always build new mappings).
        data: dict[str, Any] = {"v": FORMAT, "cursor": self.cursor, "steps": self.steps}
        if self.last_result is not None:
            data["last_result"] = self.last_result
        if self.dispatch:
            data["dispatch"] = self.dispatch
        if self.loops:
            data["loops"] = self.loops
        if self.retries:
            data["retries"] = self.retries
        if self.fan_out:
            data["fan_out"] = self.fan_out
        return data

    def _with(
        self,
        *,
        cursor: Any = ...,
        steps: Mapping[str, str] | None = None,
        last_result: Any = ...,
        dispatch: Mapping[str, str] | None = None,
        loops: Mapping[str, Any] | None = None,
        retries: Mapping[str, Any] | None = None,
        fan_out: Mapping[str, Any] | None = None,
    ) -> Progress:
        """A copy with the given fields changed (``dataclasses.replace`` is several times
        slower, and this runs on every commit)."""
        return Progress(
            self.cursor if cursor is ... else cursor,
            self.steps if steps is None else steps,
            self.last_result if last_result is ... else last_result,
            self.dispatch if dispatch is None else dispatch,
            self.loops if loops is None else loops,
            self.retries if retries is None else retries,
            self.fan_out if fan_out is None else fan_out,
        )

    def status_of(self, step_name: str) -> StepStatus:
        """The status of a step (PENDING if it never left it)."""
        return StepStatus(self.steps.get(step_name, StepStatus.PENDING.value))

    # -- transitions -----------------------------------------------------------------------

    def step_completed(
        self, step_name: str, result: dict[str, Any], skipped: Iterable[str] = ()
    ) -> Progress:
        """``step_name`` completed with ``result`` (stored through the codec); ``skipped``
        steps were jumped over. The commit sets the cursor (:meth:`at`)."""
        # Runs on every step commit: plain constructor and module constants, no replace().
        steps = dict(self.steps)
        for name in skipped:
            steps[name] = _SKIPPED
        steps[step_name] = _COMPLETED
        dispatch, loops, retries, fan_out = self.dispatch, self.loops, self.retries, self.fan_out
        return Progress(
            self.cursor,
            steps,
            result,
            _without(dispatch, step_name) if dispatch else dispatch,
            _without(loops, step_name) if loops else loops,
            _without(retries, step_name) if retries else retries,
            _without(fan_out, step_name) if fan_out else fan_out,
        )

    def step_dispatched(self, step_name: str, token: str) -> Progress:
        """``step_name`` was sent to run elsewhere; only a completion with ``token`` counts."""
        return self._with(
            steps={**self.steps, step_name: StepStatus.DISPATCHED.value},
            dispatch={**self.dispatch, step_name: token},
        )

    def tasks_dispatched(
        self,
        step_name: str,
        token: str,
        tasks: Iterable[tuple[str, str]],
        *,
        next_cursor: Any,
        at: float,
    ) -> Progress:
        """The ``(task, token)`` pairs of the PARALLEL step ``step_name`` (this batch, in
        declared order) were sent to run elsewhere, one dispatched unit each; the step waits
        under ``token`` (in ``dispatch``) until every task has reported. ``next_cursor`` is
        the step's cursor once they have (``None``: no batch follows); ``at`` the time they
        were sent (epoch seconds)."""
        entry = {
            "tasks": [[name, task_token] for name, task_token in tasks],
            "done": {},
            "next": next_cursor,
            "at": at,
        }
        return self._with(
            steps={**self.steps, step_name: StepStatus.DISPATCHED.value},
            dispatch={**self.dispatch, step_name: token},
            fan_out={**self.fan_out, step_name: entry},
        )

    def task_reported(self, step_name: str, task: str, outcome: Mapping[str, Any]) -> Progress:
        """Task ``task`` of the dispatched PARALLEL step ``step_name`` reported ``outcome``
        (JSON-ready); the step still waits for the others."""
        entry = self.fan_out[step_name]
        done = {**entry["done"], task: outcome}
        return self._with(fan_out={**self.fan_out, step_name: {**entry, "done": done}})

    def step_progressed(self, step_name: str, cursor: Any) -> Progress:
        """``step_name`` did part of its work (a batch, an iteration) and goes on from
        ``cursor`` (JSON-ready); it is RUNNING until it completes. A dispatch of that part
        (the tasks of a batch) is over."""
        return self._with(
            steps={**self.steps, step_name: StepStatus.RUNNING.value},
            loops={**self.loops, step_name: cursor},
            dispatch=_without(self.dispatch, step_name),
            fan_out=_without(self.fan_out, step_name),
        )

    def step_failed(self, step_name: str) -> Progress:
        """``step_name`` failed (the cursor stays on it). Every outstanding dispatch is void:
        its report will be ignored, and the dispatched steps (siblings of a DAG stage) are
        PENDING again, so a retry runs them anew."""
        steps = {
            name: status
            for name, status in self.steps.items()
            if name not in self.dispatch or name == step_name
        }
        steps[step_name] = StepStatus.FAILED.value
        return self._with(
            steps=steps, dispatch={}, retries=_without(self.retries, step_name), fan_out={}
        )

    def retry_scheduled(self, step_name: str, attempts: int, next_at: str) -> Progress:
        """``attempts`` attempts of ``step_name`` failed; the next one is due at ``next_at``
        (ISO 8601). The step stays current; its count survives a reload."""
        entry = {"attempts": attempts, "next_at": next_at}
        return self._with(retries={**self.retries, step_name: entry})

    def reset(self, step_name: str) -> Progress:
        """``step_name`` is PENDING again (a retried step)."""
        if step_name not in self.steps:
            return self
        return self._with(steps={k: v for k, v in self.steps.items() if k != step_name})

    def at(self, cursor: str | None) -> Progress:
        """The record with the run positioned at ``cursor``. A step the run moves (back) to is
        PENDING again, whatever it was, and a part-way cursor of it is forgotten: a retried-from,
        jumped-to or looped-to step runs anew (the tasks of an earlier fan-out of it are
        forgotten too). Staying on the same step keeps both (a step in parts, a retry of the
        failed step, a reload)."""
        if cursor == self.cursor:
            return self
        if cursor is None:
            return Progress(
                None,
                self.steps,
                self.last_result,
                self.dispatch,
                self.loops,
                self.retries,
                self.fan_out,
            )
        steps, loops, retries, fan_out = self.steps, self.loops, self.retries, self.fan_out
        return Progress(
            cursor,
            _without(steps, cursor) if cursor in steps else steps,
            self.last_result,
            self.dispatch,
            _without(loops, cursor) if loops else loops,
            _without(retries, cursor) if retries else retries,
            _without(fan_out, cursor) if fan_out else fan_out,
        )
