"""A manager's path through the UI: find a large order waiting for approval in the list, open
its run page, see the graph, be told off for a bad approval (nothing changes), then approve it
and watch it complete without a reload. Also: the list is usable by keyboard."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import LARGE, Server
from tests.ui.conftest import (
    assert_not_reloaded,
    confirm,
    expect_graph,
    mark_page,
    open_ui,
    row,
    run_detail,
    screenshot,
    set_field,
    start_run,
)

WAITING = {
    "Validate_Order": "done",
    "Check_Amount": "done",
    "Auto_Approve": "skipped",
    "Manager_Approval": "waiting",
    "Complete_Order": "pending",
    "Reject_Order": "pending",
}
APPROVED = {
    "Validate_Order": "done",
    "Check_Amount": "done",
    "Auto_Approve": "skipped",
    "Manager_Approval": "done",
    "Complete_Order": "done",
    "Reject_Order": "skipped",
}


def test_approve_a_large_order(page: Page, ui_server: Server, api: httpx.Client) -> None:
    run = start_run(api, "OrderApproval", LARGE)
    wid = run["workflow_id"]
    assert run["status"] == "WAITING_HUMAN"

    # GET / redirects to the UI, whose default route is the list.
    page.goto(f"{ui_server.url}/")
    assert page.url.startswith(f"{ui_server.url}/ui/"), page.url
    listed = row(page, wid)
    expect(listed).to_be_visible()
    expect(listed.locator('[data-testid="status-badge"]')).to_have_text("WAITING_HUMAN")

    listed.locator(f'a[href="#/runs/{wid}"]').click()
    expect(page).to_have_url(re.compile(rf"#/runs/{wid}$"))
    expect(page.locator('[data-testid="run-status"]')).to_have_text("WAITING_HUMAN")
    expect(page.locator('[data-testid="run-current-step"]')).to_have_text("Manager_Approval")
    expect(page.locator('[data-testid="run-type"]')).to_contain_text("OrderApproval")
    expect_graph(page, WAITING)
    state = page.locator('[data-testid="run-state"]')
    expect(state.locator("details").first).to_be_attached()
    expect(state.locator("summary").first).to_be_attached()
    for key in ("order_id", "customer", "items", "total"):
        expect(state).to_contain_text(key)
    expect(page.locator('[data-testid="audit-timeline"] li').first).to_be_visible()
    expect(page.locator('[data-testid="audit-timeline"]')).to_contain_text("STEP_EXECUTED")
    expect(page.locator('[data-testid="run-logs"]')).to_be_attached()
    durations = page.locator('[data-testid="step-durations"]')
    expect(durations).to_contain_text("Validate_Order")
    expect(durations.locator("tr", has_text="Validate_Order")).to_have_count(1)
    screenshot(page, "run.png")

    # The form has one control per field of ApprovalInput; the required ones say so.
    form = page.locator('form[data-testid="resume-form"]')
    expect(form).to_be_visible()
    for field in ("approved", "approver", "comment"):
        expect(form.locator(f'[name="{field}"]')).to_have_count(1)
    for field in ("approved", "approver"):
        expect(form.locator(f'[name="{field}"]')).to_have_attribute("aria-required", "true")
    expect(form.locator('[name="comment"]')).not_to_have_attribute("aria-required", "true")

    # A bad approval (the approver must not be empty): the server's field error shows next to
    # the field, and the run is exactly as it was.
    before = run_detail(api, wid)
    mark_page(page)
    set_field(page, "resume-form", "approved", True)
    set_field(page, "resume-form", "approver", "")
    set_field(page, "resume-form", "comment", "looks fine")
    page.locator('[data-testid="resume-submit"]').click()
    asked = page.locator('dialog[data-testid="confirm-dialog"]')
    field_error = page.locator('[data-testid="field-error"][data-field="approver"]')
    try:  # the page may check the input itself before asking
        page.wait_for_function(
            """() => document.querySelector('dialog[data-testid="confirm-dialog"]').open
            || document.querySelector('[data-testid="field-error"][data-field="approver"]')
                ?.textContent.trim()"""
        )
    except Exception as exc:
        raise AssertionError(
            "Submitting the resume form with an empty approver opened no confirm-dialog and "
            "showed no field-error (native `required` validation blocking the submit?)"
        ) from exc
    if asked.is_visible():
        confirm(page)
    expect(field_error).to_be_visible()
    expect(field_error).not_to_have_text("")
    expect(page.locator('[data-testid="run-status"]')).to_have_text("WAITING_HUMAN")
    screenshot(page, "approval-form.png")
    after = run_detail(api, wid)
    for key in ("status", "current_step", "state", "version"):
        assert after[key] == before[key], key

    # A good approval: confirmed, the page updates itself.
    set_field(page, "resume-form", "approved", True)
    set_field(page, "resume-form", "approver", "mia")
    set_field(page, "resume-form", "comment", "ok")
    page.locator('[data-testid="resume-submit"]').click()
    confirm(page)
    expect(page.locator('[data-testid="run-status"]')).to_have_text("COMPLETED")
    result = page.locator('[data-testid="action-result"]')
    expect(result).to_have_attribute("data-kind", "success")
    expect(field_error).to_be_hidden()
    expect_graph(page, APPROVED)
    expect(page.locator('form[data-testid="resume-form"]')).to_be_hidden()
    assert_not_reloaded(page)

    done = run_detail(api, wid)
    assert done["status"] == "COMPLETED"
    assert done["state"]["approved"] is True
    assert done["state"]["approver"] == "mia"
    assert done["state"]["outcome"] is not None


def test_keyboard_opens_a_run(page: Page, ui_server: Server, api: httpx.Client) -> None:
    start_run(api, "OrderApproval", LARGE)
    open_ui(page, ui_server)
    first_link = page.locator('tr[data-testid="workflow-row"] a[href^="#/runs/"]').first
    expect(first_link).to_be_visible()
    href = first_link.get_attribute("href")
    assert href

    for _ in range(80):
        page.keyboard.press("Tab")
        if first_link.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the first workflow link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator('[data-testid="run-status"]')).not_to_be_empty()
