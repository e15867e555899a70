"""
What the browser tests share: Debian's Chromium driven by Playwright for
Python (never a downloaded browser), the module skip that says why when
either is missing, and the C{playwright} and C{browser} fixtures (one
browser per test module). A test module imports the fixtures by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (apt-get install chromium), launched by C{executable_path}."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
"""Headless in a sandboxed CI: no GPU, and no calls to Google's services (the network is closed)."""


def need_browser(what: str) -> None:
    """
    Skip the calling test module, saying why, unless Playwright for Python
    and Debian's Chromium are installed. Call it at module level, before
    importing from C{playwright}.

    @param what: the tests, for the reason, e.g. C{"the web page tests"}.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"{what} need Playwright for Python: {e}", allow_module_level=True)
    if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the machine
        pytest.skip(f"{what} need Debian's Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's driver, for one test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """Debian's Chromium, headless, for one test module."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()
