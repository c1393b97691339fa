"""PyYAML's syntax errors as a person would write them: one short sentence, located by line and
column, instead of PyYAML's ``while scanning ... in "<unicode string>", line 3`` dump."""

from __future__ import annotations

import re

import yaml

from ruvon.errors import DefinitionIssue

__all__ = ["yaml_issue"]

_TOKENS = {
    "<block mapping start>": "a new 'key: value'",
    "<block sequence start>": "a list item '-'",
    "<block end>": "the end of the block",
    "<stream end>": "the end of the file",
    "<document start>": "a new document '---'",
    "<document end>": "a document end '...'",
    "<scalar>": "a value",
    "<flow mapping start>": "'{'",
    "<flow sequence start>": "'['",
    "'-'": "a list item '-'",
    "'?'": "a new 'key: value'",
}
_FOUND = re.compile(r"^expected (.+?), but (?:found|got) (.+)$")
_CHARACTER = re.compile(r"^found character '(.+)' that cannot start any token$")
_CLOSERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}


def _token(text: str) -> str:
    if text.startswith("'<") and text.endswith(">'"):
        text = text[1:-1]
    return _TOKENS.get(text, text)


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "above"


def _in_indentation(text: str, mark: yaml.Mark) -> bool:
    """Whether the character at ``mark`` is in the leading whitespace of its line."""
    lines = text.splitlines()
    if mark.line >= len(lines):
        return False
    return not lines[mark.line][: mark.column].strip()


def _describe(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, yaml.Mark | None]:
    """The sentence for ``exc`` and the mark it belongs at."""
    problem = exc.problem or ""
    context = exc.context or ""
    mark, start = exc.problem_mark, exc.context_mark

    character = _CHARACTER.match(problem)
    if character is not None:
        if character.group(1) == "\\t":
            if mark is not None and _in_indentation(text, mark):
                return "tabs are not allowed for indentation; use spaces", mark
            return "a tab cannot separate YAML tokens here; use spaces", mark
        return (
            f"a value cannot start with '{character.group(1)}'; put the value in quotes",
            mark,
        )
    if problem == "found unexpected end of stream" and "quoted scalar" in context:
        return "this quoted string is never closed (the file ends inside it)", start or mark
    if problem == "mapping values are not allowed here":
        return (
            "':' is not allowed here; check the indentation of this line, or quote a value "
            "that contains ': '",
            mark,
        )
    if problem == "could not find expected ':'":
        return "expected 'key: value', but this line has no ':' after its key", start or mark
    found = _FOUND.match(problem)
    if found is not None:
        expected, got = found.group(1), _token(found.group(2))
        if context == "while parsing a block mapping":
            return (
                f"expected a 'key:' aligned with the mapping at {_at(start)}, but found {got} "
                "(check the indentation)",
                mark,
            )
        if context == "while parsing a block collection":
            return (
                f"expected a list item '-' aligned with the list at {_at(start)}, but found "
                f"{got} (check the indentation)",
                mark,
            )
        for kind, (opener, closer) in _CLOSERS.items():
            if context == f"while parsing a {kind}" and got == _TOKENS["<stream end>"]:
                return f"this '{opener}' is never closed with '{closer}'", start or mark
            if context == f"while parsing a {kind}":
                return (
                    f"the '{opener}' at {_at(start)} is not closed: expected ',' or "
                    f"'{closer}', but found {got}",
                    mark,
                )
        return f"expected {_token(expected)}, but found {got}", mark
    if "duplicate anchor" in context:
        anchor = context.split(";")[0].removeprefix("found ")
        return f"{anchor} (first defined at {_at(start)})", mark
    if "expected a single document" in context:
        return "a workflow file holds one YAML document, but this starts another ('---')", mark
    if problem.startswith("found unknown escape character"):
        return (
            f"{problem.removeprefix('found ')} in a double-quoted string; use single quotes "
            "or write the backslash twice",
            mark,
        )
    sentence = problem.removeprefix("found ") or context
    if context and problem:
        sentence = f"{sentence} ({context.removeprefix('while ')} at {_at(start)})"
    return sentence, mark or start


def yaml_issue(exc: yaml.YAMLError, text: str, file: str | None) -> DefinitionIssue:
    """The :class:`DefinitionIssue` for a YAML syntax error in ``text`` (the file's content)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        sentence, mark = _describe(exc, text)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        return DefinitionIssue(f"invalid YAML: {sentence}", file=file, line=line, column=column)
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        position = exc.position
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        code = f"#x{exc.character:04x}"
        message = f"invalid YAML: the character {code} is not allowed in a YAML file"
        return DefinitionIssue(message, file=file, line=line, column=column)
    return DefinitionIssue(f"invalid YAML: {exc}", file=file)
