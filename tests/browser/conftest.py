"""Browser tests: a real Airflow 3 api-server driven by headless Debian Chromium through Playwright.

Needs ``apt-get install -y chromium`` and the PyPI ``playwright`` package (no ``playwright install``:
the system browser is used). Missing tools fail the tests with the install command; Airflow 2 has
no api-server, so there the tests are skipped. Screenshots go to ``artifacts/browser/``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from alta_testing.servers.api_server import AirflowApiServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_INSTALL = "apt-get install -y chromium"
PLAYWRIGHT_INSTALL = "pip install playwright (the system chromium is used: no `playwright install`)"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_artifacts: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser against a real Airflow UI")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the screenshots this session saved."""
    if _artifacts:
        terminalreporter.write_sep("-", "browser test artifacts")
        for path in _artifacts:
            terminalreporter.write_line(str(path))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def save_screenshot(page: Page, name: str) -> Path:
    """Screenshot the whole page into ``artifacts/browser/NAME.png``; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    _artifacts.append(path)
    print(f"screenshot: {path}")
    return path


def _require_airflow_3() -> None:
    import airflow

    if int(airflow.__version__.split(".")[0]) < 3:
        pytest.skip(f"the browser tests drive the Airflow 3 UI (api-server); this is {airflow.__version__}")


def _require_browser_tools() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:
        pytest.fail(f"the PyPI package playwright is not installed: {PLAYWRIGHT_INSTALL}", pytrace=False)
    chromium = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if chromium is None:
        pytest.fail(f"Debian's chromium is not installed (no {CHROMIUM}): {CHROMIUM_INSTALL}", pytrace=False)


@pytest.fixture(scope="module")
def airflow_ui() -> Iterator[AirflowApiServer]:
    """A real Airflow 3 api-server with the Test button enabled; its log is kept as an artifact."""
    _require_airflow_3()
    _require_browser_tools()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = AirflowApiServer(
        env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}, log_path=ARTIFACTS / "api-server.log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.running


@pytest.fixture(scope="module")
def browser_context(airflow_ui: AirflowApiServer) -> Iterator[BrowserContext]:
    """Headless Debian Chromium with a fresh profile, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="alta-chromium-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=shutil.which("chromium") or CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
                base_url=airflow_ui.url,
            )
            context.set_default_timeout(30_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new tab; on failure its last state is kept as ``failure-<test>.png``."""
    tab = browser_context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        save_screenshot(tab, f"failure-{request.node.name}")
    tab.close()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """``screenshot(name)`` keeps the page as ``artifacts/browser/NAME.png``."""
    return lambda name: save_screenshot(page, name)
