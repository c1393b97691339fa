"""Fixtures of the browser tests: the real server (see ``tests/server/conftest.py``) on a fresh
SQLite file, and headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright's sync
API. Nothing is downloaded: a missing Chromium fails the tests, unless the developer sets
``RUVON_SKIP_BROWSER_TESTS=1`` (then they are skipped).

One server per module, one browser for the package, one page per test. Screenshots go to
``test-artifacts/ui/`` (a failing test leaves ``failures/<test>.png`` there too).

Playwright's sync API marks its event loop as running in this thread while it is alive, so the
browser is package-scoped: it is closed before the rest of the suite (pytest-asyncio) runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.server.conftest import Server, make_project, start_server

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
SKIP_ENV = "RUVON_SKIP_BROWSER_TESTS"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000
API_KEY = "ui-test-key"
API_KEYS = f"{API_KEY}:ops:admin"
RUN_HASH = re.compile(r"#/runs/([0-9a-fA-F-]{36})$")

expect.set_options(timeout=TIMEOUT_MS)


# -- browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright (sync API), or a failure saying how to get Chromium."""
    if not CHROMIUM.exists():
        message = (
            f"The browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium); "
            f"set {SKIP_ENV}=1 to skip them instead."
        )
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{SKIP_ENV}=1 and no Chromium at {CHROMIUM}")
        pytest.fail(message, pytrace=False)
    shutil.rmtree(ARTIFACTS / "failures", ignore_errors=True)
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium, shared by the package's tests."""
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield launched
    finally:
        launched.close()


PageFactory = Callable[..., Page]


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[PageFactory]:
    """Opens pages, each in a fresh context (empty sessionStorage); ``viewport`` default
    1280x900. Uncaught JavaScript errors fail the test; a failing test leaves a screenshot."""
    opened: list[tuple[Page, list[str]]] = []

    def make(viewport: dict[str, int] | None = None) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{exc.name}: {exc.message}"))
        opened.append((page, errors))
        return page

    yield make
    failed = getattr(request.node, "ui_failed", False)
    uncaught: list[str] = []
    for number, (page, errors) in enumerate(opened):
        if failed and not page.is_closed():
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            suffix = f"-{number}" if number else ""
            (ARTIFACTS / "failures").mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(PlaywrightError):
                shot = ARTIFACTS / "failures" / f"{name}{suffix}.png"
                page.screenshot(path=shot, full_page=True)
        uncaught += errors
        page.context.close()
    if uncaught and not failed:
        pytest.fail("Uncaught JavaScript errors in the UI:\n" + "\n".join(uncaught))


@pytest.fixture
def page(new_page: PageFactory) -> Page:
    """A desktop page (1280x900)."""
    return new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.ui_failed = True  # type: ignore[attr-defined]
    return report


# -- servers ---------------------------------------------------------------------------------


def make_ui_project(root: Path) -> Path:
    """The server tests' project plus ``project/`` here (Batch: a run with a child run;
    Report: dependencies after a PARALLEL step)."""
    make_project(root)
    shutil.copytree(HERE / "project" / "ui_flows", root / "ui_flows")
    for name in ("batch.yaml", "report.yaml"):
        shutil.copy(HERE / "project" / "config" / name, root / "config" / name)
    registry_file = root / "config" / "workflow_registry.yaml"
    registry = yaml.safe_load(registry_file.read_text())
    extra = yaml.safe_load((HERE / "project" / "registry_extra.yaml").read_text())
    registry["workflows"] += extra["workflows"]
    registry_file.write_text(yaml.safe_dump(registry, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The module's server: a fresh SQLite file, auth disabled."""
    root = tmp_path_factory.mktemp("ui")
    running = start_server(
        make_ui_project(root / "project"), f"sqlite:///{root / 'ui.db'}", root / "server.log"
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that wants the API key ``ui-test-key`` (user ``ops``, role admin)."""
    root = tmp_path_factory.mktemp("ui-auth")
    running = start_server(
        make_project(root / "project"),
        f"sqlite:///{root / 'ui.db'}",
        root / "server.log",
        RUVON_AUTH_PROVIDER="api_key",
        RUVON_API_KEYS=API_KEYS,
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(ui_server: Server) -> Iterator[httpx.Client]:
    """An HTTP client of the module's server, acting as user ``ann``."""
    with ui_server.client(headers={"X-User-ID": "ann"}) as client:
        yield client


# -- helpers ---------------------------------------------------------------------------------


def start_run(api: httpx.Client, workflow_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Starts a run over the REST API; its RunResponse."""
    response = api.post(
        "/api/v1/workflow/start", json={"workflow_type": workflow_type, "initial_data": data}
    )
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def run_detail(api: httpx.Client, workflow_id: str) -> dict[str, Any]:
    """The run as ``GET /api/v1/workflows/{id}`` tells it."""
    response = api.get(f"/api/v1/workflows/{workflow_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def open_ui(page: Page, server: Server, route: str = "#/workflows") -> None:
    """Opens the UI at ``route`` (a hash route)."""
    page.goto(f"{server.url}/ui/{route}")


def screenshot(page: Page, name: str) -> Path:
    """Saves a full-page PNG as ``test-artifacts/ui/<name>``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    return path


def row(page: Page, workflow_id: str) -> Locator:
    """The list's row of a run."""
    return page.locator(f'tr[data-testid="workflow-row"][data-workflow-id="{workflow_id}"]')


def row_ids(page: Page) -> list[str]:
    """The run ids of the rows the list shows, in order."""
    ids: list[str] = page.locator('tr[data-testid="workflow-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.workflowId)"
    )
    return ids


def node(page: Page, step: str, svg: str = "run-graph") -> Locator:
    """A step's node in the run's graph."""
    return page.locator(f'svg[data-testid="{svg}"] g.node[data-step="{step}"]')


def expect_graph(page: Page, states: dict[str, str]) -> None:
    """Each step's node has the given ``data-state``."""
    for step, state in states.items():
        expect(node(page, step)).to_have_attribute("data-state", state)


def confirm(page: Page, ok: bool = True) -> None:
    """Answers the confirmation dialog (OK, or Cancel) and waits for it to close."""
    dialog = page.locator('dialog[data-testid="confirm-dialog"]')
    expect(dialog).to_be_visible()
    page.locator('[data-testid="confirm-ok"]' if ok else '[data-testid="confirm-cancel"]').click()
    expect(dialog).to_be_hidden()


def set_field(page: Page, form: str, name: str, value: str | bool) -> None:
    """Sets a form control by name: a checkbox, a select (booleans as "true"/"false"), or a
    text control."""
    control = page.locator(f'form[data-testid="{form}"] [name="{name}"]')
    expect(control).to_have_count(1)
    kind = control.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
    if kind == "input:checkbox":
        control.set_checked(bool(value))
    elif kind.startswith("select:"):
        control.select_option(str(value).lower() if isinstance(value, bool) else value)
    else:
        control.fill(str(value))


def mark_page(page: Page) -> None:
    """Marks the window, so that :func:`assert_not_reloaded` can tell a reload."""
    page.evaluate("window.__ruvonUiTest = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__ruvonUiTest") == 1, "the page was reloaded"
