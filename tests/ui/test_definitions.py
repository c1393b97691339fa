"""The workflow types: a card with a graph for each, and a form that starts a run."""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import SMALL, Server
from tests.ui.conftest import RUN_HASH, open_ui, run_detail

STEPS = {
    "OrderApproval": ["Validate_Order", "Check_Amount", "Manager_Approval", "Complete_Order"],
    "Flaky": ["Prepare", "Fetch", "Finish"],
    "Slow": ["Prepare", "Sleep", "Done"],
}


def test_start_a_run_from_its_definition(page: Page, ui_server: Server, api: httpx.Client) -> None:
    open_ui(page, ui_server, "#/definitions")
    for workflow_type, steps in STEPS.items():
        card = page.locator(f'[data-testid="definition-card"][data-type="{workflow_type}"]')
        expect(card).to_be_visible()
        graph = card.locator('svg[data-testid="type-graph"]')
        expect(graph).to_be_visible()
        for step in steps:
            expect(graph).to_contain_text(step)

    card = page.locator('[data-testid="definition-card"][data-type="OrderApproval"]')
    card.locator('[data-testid="start-link"]').click()
    expect(page).to_have_url(re.compile(r"#/definitions/OrderApproval$"))
    form = page.locator('form[data-testid="start-form"]')
    expect(form).to_be_visible()
    for field in ("order_id", "customer"):
        expect(form.locator(f'[name="{field}"]')).to_have_count(1)

    page.locator('[data-testid="json-toggle"]').click()
    raw = form.locator('textarea[name="__json"]')
    expect(raw).to_be_visible()
    raw.fill(json.dumps(SMALL))
    page.locator('[data-testid="start-submit"]').click()

    # Starting may ask for confirmation first (every action does); answer it if it does.
    page.wait_for_function(
        "() => location.hash.startsWith('#/runs/')"
        " || document.querySelector('dialog[data-testid=\"confirm-dialog\"]')?.open"
    )
    dialog = page.locator('dialog[data-testid="confirm-dialog"]')
    if dialog.is_visible():
        page.locator('[data-testid="confirm-ok"]').click()
    expect(page).to_have_url(RUN_HASH)
    match = RUN_HASH.search(page.url)
    assert match, page.url
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")
    expect(page.locator('[data-testid="run-type"]')).to_contain_text("OrderApproval")

    detail = run_detail(api, match.group(1))
    assert detail["workflow_type"] == "OrderApproval"
    assert detail["status"] == "COMPLETED"
    assert detail["state"]["order_id"] == SMALL["order_id"]
    assert detail["state"]["items"] == SMALL["items"]
