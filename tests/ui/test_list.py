"""The list of runs: it follows the event stream (a run started elsewhere appears, the status
counts change, no reload), and it fits a phone's width."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.server.conftest import LARGE, SMALL, Server
from tests.ui.conftest import (
    PHONE,
    PageFactory,
    assert_not_reloaded,
    mark_page,
    open_ui,
    row,
    screenshot,
    start_run,
)


def count_button(page: Page, status: str) -> Locator:
    return page.locator(f'[data-testid="status-count"][data-status="{status}"]')


def total(api: httpx.Client, status: str | None = None) -> int:
    params = {"status": status} if status else {}
    response = api.get("/api/v1/workflows", params={**params, "limit": 1})
    assert response.status_code == 200, response.text
    count: int = response.json()["total"]
    return count


def counted(number: int) -> re.Pattern[str]:
    """A count button's text showing ``number`` (and no other number)."""
    return re.compile(rf"^\D*{number}\D*$")


def test_new_runs_appear_live(page: Page, ui_server: Server, api: httpx.Client) -> None:
    first = start_run(api, "OrderApproval", SMALL)
    open_ui(page, ui_server)
    expect(row(page, first["workflow_id"])).to_be_visible()
    expect(page.locator('[data-testid="live-status"]')).to_have_attribute("data-live", "true")
    expect(count_button(page, "")).to_have_text(counted(total(api)))
    expect(count_button(page, "COMPLETED")).to_have_text(counted(total(api, "COMPLETED")))
    expect(count_button(page, "WAITING_HUMAN")).to_have_count(0)
    mark_page(page)

    waiting = start_run(api, "OrderApproval", LARGE)
    added = row(page, waiting["workflow_id"])
    expect(added).to_be_visible()
    expect(added.locator('[data-testid="status-badge"]')).to_have_text("WAITING_HUMAN")
    button = count_button(page, "WAITING_HUMAN")
    expect(button).to_contain_text("WAITING_HUMAN")
    expect(button).to_have_text(counted(1))
    expect(count_button(page, "")).to_have_text(counted(total(api)))

    # A change of status (not only a new run) shows too.
    response = api.post(
        f"/api/v1/workflow/{waiting['workflow_id']}/cancel", json={"reason": "elsewhere"}
    )
    assert response.status_code == 200, response.text
    expect(added.locator('[data-testid="status-badge"]')).to_have_text("CANCELLED")
    expect(count_button(page, "CANCELLED")).to_have_text(counted(1))
    assert_not_reloaded(page)


def test_phone_width(new_page: PageFactory, ui_server: Server, api: httpx.Client) -> None:
    run = start_run(api, "OrderApproval", LARGE)
    page = new_page(PHONE)
    open_ui(page, ui_server)
    expect(row(page, run["workflow_id"])).to_be_attached()
    expect(page.locator('table[data-testid="workflows-table"]')).to_be_attached()
    expect(count_button(page, "WAITING_HUMAN")).to_be_visible()
    screenshot(page, "phone.png")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page is {width} px wide on a 390 px phone"
