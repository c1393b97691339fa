"""The graph of a workflow with dependencies after a PARALLEL step: drawn in layers (the steps
that need the same step side by side), dependency edges, the parallel step's tasks; and a run of
it driven stage by stage with the run page's "Run" button, every step done in the end."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import Server
from tests.ui.conftest import confirm, expect_graph, node, open_ui, start_run

TRANSLATE = re.compile(r"translate\(([\d.]+),([\d.]+)\)")


def position(page: Page, step: str, svg: str) -> tuple[float, float]:
    transform = node(page, step, svg).get_attribute("transform") or ""
    found = TRANSLATE.fullmatch(transform)
    assert found, transform
    return float(found[1]), float(found[2])


def run_next(page: Page, step: str) -> None:
    """Presses the run page's "Run <step>" button and confirms."""
    button = page.locator('[data-testid="next-submit"]')
    expect(button).to_have_text(f"Run {step}")
    button.click()
    confirm(page)


def test_a_dag_is_drawn_in_layers(page: Page, ui_server: Server, api: httpx.Client) -> None:
    open_ui(page, ui_server, "#/definitions/Report")
    svg = "type-graph"
    gather = node(page, "Gather", svg)
    expect(gather).to_contain_text("2 tasks")
    expect(gather.locator("title")).to_contain_text("tasks: Sales, Stock")
    graph = page.locator('svg[data-testid="type-graph"]')
    expect(graph.locator("path.edge-dependency")).to_have_count(4)

    top = position(page, "Gather", svg)
    check = position(page, "Check", svg)
    price = position(page, "Price", svg)
    publish = position(page, "Publish", svg)
    assert check[1] == price[1] > top[1]  # side by side, below what they need
    assert check[0] != price[0]
    assert publish[1] > check[1]

    # No step chains to the next one: the page's "Run" button drives the run stage by stage.
    run = start_run(api, "Report", {})
    assert (run["status"], run["current_step"]) == ("ACTIVE", "Check"), run
    open_ui(page, ui_server, f"#/runs/{run['workflow_id']}")
    expect(page.locator('[data-testid="run-status"]')).to_have_text("ACTIVE")
    expect_graph(page, {"Gather": "done", "Check": "pending", "Price": "pending"})
    expect(node(page, "Check")).to_have_class(re.compile(r"\bcurrent\b"))
    run_next(page, "Check")  # the stage: Check and Price
    expect(page.locator('[data-testid="run-current-step"]')).to_have_text("Publish")
    expect_graph(page, {"Check": "done", "Price": "done", "Publish": "pending"})
    run_next(page, "Publish")
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")
    expect_graph(page, dict.fromkeys(("Gather", "Check", "Price", "Publish"), "done"))
    durations = page.locator('[data-testid="step-durations"] tbody tr')
    expect(durations).to_have_count(4)
    expect(page.locator('form[data-testid="next-form"]')).to_have_count(0)
