"""Paging through the list, filtering it by type and status, and looking a run up by id, on a
server of its own with 12 known runs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import LARGE, MISSING_ID, SMALL, Server
from tests.ui.conftest import open_ui, row, row_ids, screenshot, start_run


def page_info(first: int, last: int, of: int) -> re.Pattern[str]:
    return re.compile(rf"\b{first}\s*[\u2013\u2014-]\s*{last}\s+of\s+{of}\b")


def expect_rows(page: Page, ids: set[str]) -> None:
    """The list shows exactly these runs."""
    rows = page.locator('tr[data-testid="workflow-row"]')
    expect(rows).to_have_count(len(ids))
    assert set(row_ids(page)) == ids


def test_paging_filters_and_search(
    page: Page, ui_server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    small = {start_run(api, "OrderApproval", SMALL)["workflow_id"] for _ in range(5)}
    large = {start_run(api, "OrderApproval", LARGE)["workflow_id"] for _ in range(3)}
    missing = str(tmp_path / "never-there")
    flaky = {start_run(api, "Flaky", {"fail_marker": missing})["workflow_id"] for _ in range(4)}
    every = small | large | flaky
    assert len(every) == 12

    open_ui(page, ui_server)
    rows = page.locator('tr[data-testid="workflow-row"]')
    expect(rows).to_have_count(12)  # the default page size (25) holds them all
    expect(page.locator('[data-testid="status-count"][data-status=""]')).to_contain_text("12")
    screenshot(page, "workflows.png")  # the list in docs/ui.md
    size = page.locator('select[data-testid="page-size"]')
    expect(size).to_have_value("25")
    assert size.locator("option").evaluate_all("os => os.map(o => o.value)") == [
        "10", "25", "50", "100",
    ]  # fmt: skip

    # Paging.
    size.select_option("10")
    info = page.locator('[data-testid="page-info"]')
    prev = page.locator('[data-testid="page-prev"]')
    next_ = page.locator('[data-testid="page-next"]')
    expect(info).to_have_text(page_info(1, 10, 12))
    expect(rows).to_have_count(10)
    expect(prev).to_be_disabled()
    expect(next_).to_be_enabled()
    first_page = set(row_ids(page))
    next_.click()
    expect(info).to_have_text(page_info(11, 12, 12))
    expect(rows).to_have_count(2)
    expect(next_).to_be_disabled()
    expect(prev).to_be_enabled()
    assert first_page | set(row_ids(page)) == every
    prev.click()
    expect(info).to_have_text(page_info(1, 10, 12))
    expect(rows).to_have_count(10)

    # The status counts, and filtering by clicking one.
    counts = {"": 12, "COMPLETED": 9, "WAITING_HUMAN": 3}
    for status, number in counts.items():
        button = page.locator(f'[data-testid="status-count"][data-status="{status}"]')
        expect(button).to_have_text(re.compile(rf"^\D*{number}\D*$"))
    waiting = page.locator('[data-testid="status-count"][data-status="WAITING_HUMAN"]')
    waiting.click()
    expect(waiting).to_have_attribute("aria-pressed", "true")
    expect_rows(page, large)
    everything = page.locator('[data-testid="status-count"][data-status=""]')
    everything.click()
    expect(everything).to_have_attribute("aria-pressed", "true")
    expect(waiting).not_to_have_attribute("aria-pressed", "true")
    expect(info).to_have_text(page_info(1, 10, 12))

    # The filters.
    kind = page.locator('select[data-testid="filter-type"]')
    status = page.locator('select[data-testid="filter-status"]')
    kind.select_option("Flaky")
    expect_rows(page, flaky)
    expect(info).to_have_text(page_info(1, 4, 4))
    kind.select_option("OrderApproval")
    status.select_option("COMPLETED")
    expect_rows(page, small)
    kind.select_option("")
    status.select_option("WAITING_HUMAN")
    expect_rows(page, large)
    status.select_option("")
    expect(rows).to_have_count(10)

    # Looking a run up by its id; an empty search clears it; an unknown id finds nothing.
    wanted = sorted(flaky)[0]
    search = page.locator('form[data-testid="search-form"] input[data-testid="search-id"]')
    search.fill(wanted)
    search.press("Enter")
    expect_rows(page, {wanted})
    expect(row(page, wanted).locator('[data-testid="status-badge"]')).to_have_text("COMPLETED")
    search.fill("")
    search.press("Enter")
    expect(rows).to_have_count(10)
    search.fill(MISSING_ID)
    search.press("Enter")
    expect(page.locator('[data-testid="empty"]')).to_be_visible()
    expect(rows).to_have_count(0)
