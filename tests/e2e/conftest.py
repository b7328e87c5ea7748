"""Browser tests: the demo page (web/) in headless Chromium, driven by Playwright, against the local server.

Chromium comes from the system (Debian `chromium`), never from `playwright install`. Without it the tests skip
with the reason, except in CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from devserver.testing import RunningServer, running_server

PAGE_TIMEOUT_SECONDS = 30
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run the browser tests: .ci/run installs chromium)")
    pytest.skip(f"{reason}: apt-get install chromium to run the browser tests")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        _unavailable("no Chromium on this machine")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server(workers=2) as server:
        yield server


@pytest.fixture
def page(browser: Any, server: RunningServer) -> Iterator[Any]:
    """A fresh browser page; the test fails on a JavaScript error or a request that leaves the local server."""
    context = browser.new_context(viewport={"width": 1000, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_SECONDS * 1000)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server.url, "data:")) else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not outside, f"the page left the machine: {outside}"
