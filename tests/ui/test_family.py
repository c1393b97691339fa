"""A run that started a child: the parent links to the child, the child to the parent, and
approving the child from its page lets the parent finish."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import LARGE, Server
from tests.ui.conftest import confirm, expect_graph, open_ui, run_detail, set_field, start_run


def test_parent_and_child_are_linked(page: Page, ui_server: Server, api: httpx.Client) -> None:
    parent = start_run(api, "Batch", LARGE)
    parent_id = parent["workflow_id"]
    assert parent["status"] == "WAITING_CHILD_HUMAN_INPUT", parent
    (child_id,) = run_detail(api, parent_id)["child_ids"]

    open_ui(page, ui_server, f"#/runs/{parent_id}")
    expect(page.locator('[data-testid="run-status"]')).to_have_text("WAITING_CHILD_HUMAN_INPUT")
    expect_graph(page, {"Approve": "running", "Close": "pending"})
    expect(page.locator('[data-testid="run-parent"]')).to_have_count(0)
    children = page.locator('[data-testid="run-children"] a')
    expect(children).to_have_count(1)
    children.first.click()

    expect(page).to_have_url(re.compile(rf"#/runs/{child_id}$"))
    expect(page.locator('[data-testid="run-status"]')).to_have_text("WAITING_HUMAN")
    expect(page.locator('[data-testid="run-parent"] a')).to_have_attribute(
        "href", f"#/runs/{parent_id}"
    )
    set_field(page, "resume-form", "approved", True)
    set_field(page, "resume-form", "approver", "mia")
    page.locator('[data-testid="resume-submit"]').click()
    confirm(page)
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")

    page.locator('[data-testid="run-parent"] a').click()
    expect(page).to_have_url(re.compile(rf"#/runs/{parent_id}$"))
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")
    expect_graph(page, {"Approve": "done", "Close": "done"})
    assert run_detail(api, parent_id)["state"]["closed"] is True
