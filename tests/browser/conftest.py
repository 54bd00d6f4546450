"""Real-browser tests of the dashboard: Playwright driving the system Chromium (never ``playwright install``).

The browser is ``RELAY_CHROMIUM`` or the first of ``/usr/bin/chromium``, ``/usr/bin/chromium-browser``,
``/usr/bin/google-chrome`` that exists (Debian: ``apt-get install -y chromium``; ``.ci/run`` installs it).
Without one, or without the ``playwright`` package, these tests skip; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard_world import DashboardWorld, dashboard_world

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
"""A laptop screen: every page must be readable at this size."""


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip(message)


def chromium_path() -> str | None:
    """The Chromium to drive, or None."""
    given = os.environ.get("RELAY_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    found = next((c for c in CANDIDATES if Path(c).exists()), None)
    return found or shutil.which("chromium")


@pytest.fixture(scope="module")  # not the session: Playwright's sync API holds an asyncio loop in this thread
def browser() -> Iterator[Any]:  # until it stops, and every later test of the worker that runs a loop would fail
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
        return
    executable = chromium_path()
    if executable is None:
        _unavailable("no Chromium found (apt-get install -y chromium, or set RELAY_CHROMIUM)")
        return
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardWorld]:
    with dashboard_world(tmp_path_factory.mktemp("browser")) as made:
        yield made


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at laptop size; fails the test on any script error or CSP violation."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: Any) -> None:
        where = str((message.location or {}).get("url", ""))
        expected = "/dashboard/static/" not in where and "status of 40" in message.text  # a 403/404 page itself
        if message.type == "error" and not expected:
            problems.append(f"console {message.type}: {message.text} ({where})")

    opened.on("console", console)
    try:
        yield opened
    finally:
        context.close()
    assert problems == [], problems
