"""A server that wants an API key: the UI asks for one, refuses a wrong one, and keeps the
right one for the tab (sent as ``Authorization: Bearer``)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.server.conftest import LARGE, Server
from tests.ui.conftest import API_KEY, open_ui, row


def test_the_key_dialog(page: Page, auth_server: Server) -> None:
    with auth_server.client(headers={"Authorization": f"Bearer {API_KEY}"}) as api:
        response = api.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": LARGE},
        )
        assert response.status_code == 201, response.text
        wid = response.json()["workflow_id"]

    open_ui(page, auth_server)
    dialog = page.locator('dialog[data-testid="key-dialog"]')
    expect(dialog).to_be_visible()
    key = page.locator('input[data-testid="key-input"]')
    error = page.locator('[data-testid="key-error"]')

    key.fill("not-the-key")
    page.locator('[data-testid="key-save"]').click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("Invalid API key")
    expect(dialog).to_be_visible()
    expect(row(page, wid)).to_have_count(0)

    key.fill(API_KEY)
    with page.expect_request(lambda r: "/api/v1/" in r.url and "/events" not in r.url) as sent:
        page.locator('[data-testid="key-save"]').click()
    assert sent.value.headers.get("authorization") == f"Bearer {API_KEY}"
    expect(dialog).to_be_hidden()
    expect(page.locator('table[data-testid="workflows-table"]')).to_be_visible()
    expect(row(page, wid)).to_be_visible()
    stored = page.evaluate("Object.values(sessionStorage)")
    assert API_KEY in stored, stored

    # The key lasts as long as the tab: a reload asks for nothing.
    page.reload()
    expect(row(page, wid)).to_be_visible()
    expect(dialog).to_be_hidden()

    page.locator('[data-testid="key-button"]').click()
    expect(dialog).to_be_visible()
