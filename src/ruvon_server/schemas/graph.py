"""A workflow definition as a graph (:mod:`ruvon.definition.graph`), in its JSON form."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["GraphEdgeModel", "GraphModel", "GraphNodeModel", "GraphTaskModel"]


class GraphTaskModel(BaseModel):
    name: str
    function: str


class GraphNodeModel(BaseModel):
    name: str
    kind: str = Field(description="The step type (STANDARD, DECISION, HUMAN_IN_LOOP ...).")
    index: int
    function: str | None = None
    description: str | None = None
    automate_next: bool = False
    tasks: list[GraphTaskModel] = Field(default_factory=list)
    iterate_over: str | None = None
    while_condition: str | None = None
    target_workflow_type: str | None = None
    may_jump: bool = False
    body: GraphModel | None = Field(default=None, description="A LOOP's body.")


class GraphEdgeModel(BaseModel):
    source: str
    target: str = Field(description="A step name, or END.")
    kind: Literal["next", "route", "dependency"]
    condition: str | None = None
    label: str | None = None


class GraphModel(BaseModel):
    workflow_type: str | None
    dag: bool = Field(description="True when steps run by their dependencies.")
    nodes: list[GraphNodeModel]
    edges: list[GraphEdgeModel]


GraphNodeModel.model_rebuild()
