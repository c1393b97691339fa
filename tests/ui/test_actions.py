"""Retry and cancel from the run page: each asks for confirmation first, and the page updates
itself with the outcome."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import LARGE, Server
from tests.ui.conftest import (
    assert_not_reloaded,
    confirm,
    expect_graph,
    mark_page,
    open_ui,
    run_detail,
    start_run,
)


def test_retry_a_failed_run(
    page: Page, ui_server: Server, api: httpx.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "upstream-down"
    marker.touch()
    run = start_run(api, "Flaky", {"fail_marker": str(marker)})
    wid = run["workflow_id"]
    assert run["status"] == "FAILED"

    open_ui(page, ui_server, f"#/runs/{wid}")
    expect(page.locator('[data-testid="run-status"]')).to_have_text("FAILED")
    expect_graph(page, {"Prepare": "done", "Fetch": "failed", "Finish": "pending"})
    expect(page.locator('form[data-testid="resume-form"]')).to_be_hidden()
    form = page.locator('form[data-testid="retry-form"]')
    expect(form).to_be_visible()
    from_step = form.locator('select[name="from_step"]')
    options = from_step.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert "" in options and "Fetch" in options, options
    mark_page(page)

    marker.unlink()
    from_step.select_option("Fetch")
    page.locator('[data-testid="retry-submit"]').click()
    confirm(page)
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")
    expect(page.locator('[data-testid="action-result"]')).to_have_attribute("data-kind", "success")
    expect_graph(page, {"Prepare": "done", "Fetch": "done", "Finish": "done"})
    expect(form).to_be_hidden()
    assert_not_reloaded(page)

    detail = run_detail(api, wid)
    assert detail["status"] == "COMPLETED"
    assert detail["state"]["fetched"] is True
    assert detail["state"]["prepared"] == 1  # Prepare did not run again


def test_cancel_a_waiting_run(page: Page, ui_server: Server, api: httpx.Client) -> None:
    wid = start_run(api, "OrderApproval", LARGE)["workflow_id"]
    open_ui(page, ui_server, f"#/runs/{wid}")
    status = page.locator('[data-testid="run-status"]')
    expect(status).to_have_text("WAITING_HUMAN")
    expect(page.locator('form[data-testid="retry-form"]')).to_be_hidden()
    form = page.locator('form[data-testid="cancel-form"]')
    expect(form).to_be_visible()
    mark_page(page)

    # Saying no in the dialog changes nothing.
    before = run_detail(api, wid)
    form.locator('input[name="reason"]').fill("duplicate order")
    page.locator('[data-testid="cancel-submit"]').click()
    confirm(page, ok=False)
    expect(status).to_have_text("WAITING_HUMAN")
    page.wait_for_timeout(300)  # a request sent anyway would have landed by now
    after = run_detail(api, wid)
    assert (after["status"], after["version"]) == (before["status"], before["version"])

    page.locator('[data-testid="cancel-submit"]').click()
    confirm(page)
    expect(status).to_have_text("CANCELLED")
    expect(page.locator('[data-testid="action-result"]')).to_have_attribute("data-kind", "success")
    expect(page.locator('[data-testid="audit-timeline"]')).to_contain_text("WORKFLOW_CANCELLED")
    expect(form).to_be_hidden()
    expect(page.locator('form[data-testid="resume-form"]')).to_be_hidden()
    assert_not_reloaded(page)

    assert run_detail(api, wid)["status"] == "CANCELLED"
    audit = api.get(f"/api/v1/workflow/{wid}/audit").json()
    cancelled = [entry for entry in audit if entry["event_type"] == "WORKFLOW_CANCELLED"]
    assert len(cancelled) == 1, audit
    assert cancelled[0]["data"]["reason"] == "duplicate order"
