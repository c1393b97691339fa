"""State models of the server tests' workflows."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FlakyState(BaseModel):
    fail_marker: str = Field(description="Fetch fails while this file exists.")
    prepared: int = 0
    fetched: bool = False
    done: bool = False


class SlowState(BaseModel):
    seconds: float = 1.0
    prepared: bool = False
    slept: bool = False
    done: bool = False
