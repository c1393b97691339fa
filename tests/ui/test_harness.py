"""The harness itself: Chromium reaches the server, and the server serves the UI."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.server.conftest import Server


def test_browser_reaches_the_server(page: Page, ui_server: Server) -> None:
    page.goto(f"{ui_server.url}/health")
    expect(page.locator("body")).to_contain_text('"status":"healthy"')


def test_the_ui_is_served(api: httpx.Client) -> None:
    index = api.get("/ui/")
    assert index.status_code == 200, index.text
    assert index.headers["content-type"].startswith("text/html")
    home = api.get("/", follow_redirects=False)
    assert home.is_redirect, home.status_code
    assert home.headers["location"].endswith("/ui/"), home.headers["location"]
