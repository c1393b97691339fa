"""Reading registry and workflow files: YAML with line numbers, ``${ENV}`` and
``{{parameters.x}}`` substitution, and :func:`import_callable` — the only importer of user code.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ruvon.definition.yaml_errors import yaml_issue
from ruvon.errors import DefinitionError, DefinitionIssue

__all__ = [
    "Borrowed",
    "LineMap",
    "SourceDocument",
    "clear_import_cache",
    "import_callable",
    "read_yaml",
    "substitute",
]

YamlPath = tuple[str | int, ...]


@dataclass
class LineMap:
    """Where each key and item of a YAML document is (1-based lines), by path."""

    file: str | None
    lines: dict[YamlPath, int] = field(default_factory=dict)
    borrowed: dict[str, Borrowed] = field(default_factory=dict)
    """Top-level keys whose values came from another document (a registry entry): issues at
    or under them are located there."""

    def line_of(self, path: YamlPath) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def issue(
        self, message: str, path: YamlPath = (), *, step: str | None = None, key: str | None = None
    ) -> DefinitionIssue:
        """A :class:`DefinitionIssue` located at ``path`` in this document (or, for a borrowed
        key, in the document it came from)."""
        origin = self.borrowed.get(path[0]) if path and isinstance(path[0], str) else None
        if origin is not None:
            return origin.lines.issue(
                f"{message} ({origin.note})", (*origin.base, *path), step=step, key=key
            )
        return DefinitionIssue(message, file=self.file, line=self.line_of(path), step=step, key=key)


@dataclass(frozen=True)
class Borrowed:
    """Where a key of a combined document really is: under ``base`` in ``lines``."""

    lines: LineMap
    base: YamlPath
    note: str
    """Appended to the messages of issues located there, e.g. "in the registry entry of type
    'Loan'"."""


@dataclass
class SourceDocument:
    """A parsed YAML document together with its line map."""

    data: Any
    lines: LineMap


def _record_lines(node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def read_yaml(text: str, file: str | None = None) -> SourceDocument:
    """Parse YAML text, keeping the line of every key; syntax errors become a DefinitionError."""
    lines = LineMap(file)
    try:
        loader = yaml.SafeLoader(text)  # checks the characters first: may raise a ReaderError
    except yaml.YAMLError as exc:
        raise DefinitionError([yaml_issue(exc, text, file)], source=file) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return SourceDocument(None, lines)
        _record_lines(node, (), lines.lines)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise DefinitionError([yaml_issue(exc, text, file)], source=file) from None
    finally:
        loader.dispose()
    return SourceDocument(data, lines)


def read_yaml_file(path: Path) -> SourceDocument:
    """Read and parse a YAML file; a missing or unreadable file becomes a DefinitionError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        issue = DefinitionIssue(f"cannot read file: {exc.strerror or exc}", file=str(path))
        raise DefinitionError([issue], source=str(path)) from None
    return read_yaml(text, str(path))


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PARAM_PATTERN = re.compile(r"\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def substitute(
    value: Any,
    params: Mapping[str, Any],
    lines: LineMap,
    issues: list[DefinitionIssue],
    path: YamlPath = (),
    environ: Mapping[str, str] | None = None,
    step: str | None = None,
) -> Any:
    """Replace ``${VAR}``/``${VAR:-default}`` and ``{{parameters.x}}`` in every string of value.

    A string that is exactly one ``{{parameters.x}}`` becomes the parameter's value (keeping its
    type). Other templates (``{{state.x}}``) are left for run time.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        in_step_list = len(path) >= 2 and path[-2] in ("steps", "loop_body")
        if in_step_list and isinstance(value.get("name"), str):
            step = value["name"]
        return {
            k: substitute(v, params, lines, issues, (*path, k), env, step) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute(v, params, lines, issues, (*path, i), env, step) for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    key = next((str(p) for p in reversed(path) if isinstance(p, str)), None)

    def env_value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        message = f"environment variable '{name}' is not set"
        issues.append(lines.issue(message, path, step=step, key=key))
        return match.group(0)

    text = _ENV_PATTERN.sub(env_value, value) if "${" in value else value
    if "parameters." not in text:
        return text
    whole = _PARAM_PATTERN.fullmatch(text.strip())
    try:
        if whole is not None:
            return _lookup(params, whole.group(1))
        return _PARAM_PATTERN.sub(lambda m: str(_lookup(params, m.group(1))), text)
    except KeyError as exc:
        message = f"unknown parameter 'parameters.{exc.args[0]}'"
        issues.append(lines.issue(message, path, step=step, key=key))
        return text


_IMPORT_CACHE: dict[str, Any] = {}


def import_callable(path: str) -> Any:
    """Import ``pkg.module.attr`` or ``pkg.module:attr`` (attr may be dotted). Cached per path.

    Raises ImportError with a message naming the path and what was missing.
    """
    cached = _IMPORT_CACHE.get(path)
    if cached is not None:
        return cached
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise ImportError(f"'{path}' is not a dotted path like 'package.module.name'")
    parts = module_name.split(".") + attr_path.split(".")
    module = None
    # The longest importable prefix is the module; the rest are attributes (Class.method).
    for split in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError as exc:
            wanted = ".".join(parts[:split])
            if exc.name is not None and not wanted.startswith(exc.name):
                raise ImportError(f"cannot import '{path}': {exc}") from exc
            continue
        except Exception as exc:
            raise ImportError(
                f"cannot import '{path}': importing its module raised {exc!r}"
            ) from exc
        attrs = parts[split:]
        break
    else:
        raise ImportError(f"cannot import '{path}': no module named '{parts[0]}'")
    value: Any = module
    for attr in attrs:
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise ImportError(
                f"cannot import '{path}': '{getattr(value, '__name__', value)}' has no "
                f"attribute '{attr}'"
            ) from None
    _IMPORT_CACHE[path] = value
    return value


def clear_import_cache() -> None:
    """Forget every imported step function and model (after a hot reload)."""
    _IMPORT_CACHE.clear()
