"""A workflow graph (:mod:`ruvon.definition.graph`) as a response: JSON (the default), or a
drawing as text with ``?format=mermaid|dot|text``."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from ruvon.definition.graph import definition_graph
from ruvon.definition.schema import WorkflowDefinition
from ruvon.injection import INJECTED_KEY, injected_snapshot
from ruvon.providers.records import WorkflowRecord
from ruvon_server.errors import ApiError
from ruvon_server.schemas.graph import GraphModel

__all__ = [
    "GRAPH_RESPONSES",
    "FormatQuery",
    "GraphFormat",
    "graph_response",
    "parse_definition",
    "run_definition",
]


class GraphFormat(str, Enum):
    json = "json"
    mermaid = "mermaid"
    dot = "dot"
    text = "text"


FormatQuery = Annotated[
    GraphFormat,
    Query(
        alias="format",
        description="json (default), or a drawing: mermaid (graph TD ...), dot (Graphviz) or "
        "text (an outline), as text/plain.",
    ),
]

GRAPH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The graph as JSON, or with ?format=mermaid|dot|text as text/plain.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def parse_definition(definition: Mapping[str, Any]) -> WorkflowDefinition:
    """A resolved definition (a type's configuration or a run's snapshot), parsed; 409 when it
    does not parse (a snapshot written by another version)."""
    try:
        return WorkflowDefinition.model_validate(dict(definition))
    except ValidationError as exc:
        raise ApiError(
            409, "definition_error", f"The definition cannot be drawn: {exc.error_count()} problems"
        ) from exc


def run_definition(record: WorkflowRecord) -> Mapping[str, Any]:
    """The run's own definition: the snapshot it was started with, with any steps injected into
    it, whatever the current file says."""
    definition = record.definition_snapshot
    injected = record.metadata.get(INJECTED_KEY)
    if injected:
        definition = injected_snapshot(definition, injected)
    return definition


def graph_response(
    definition: Mapping[str, Any], how: GraphFormat
) -> GraphModel | PlainTextResponse:
    """The graph of a resolved definition (a type's configuration or a run's snapshot)."""
    graph = definition_graph(parse_definition(definition))
    if how is GraphFormat.mermaid:
        return PlainTextResponse(graph.to_mermaid())
    if how is GraphFormat.dot:
        return PlainTextResponse(graph.to_dot())
    if how is GraphFormat.text:
        return PlainTextResponse(graph.to_text())
    return GraphModel.model_validate(graph.to_dict())
