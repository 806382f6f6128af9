"""tests/browser drives the service from a real browser: Debian's Chromium (`apt-get install
chromium`) under Playwright (the `browser` dependency group). The default run leaves this
folder out (`--ignore` in pyproject.toml); `uv run --group browser pytest tests/browser` runs it,
as .ci/run does. Without Playwright or Chromium that is an error, not a skip, so CI cannot pass
without running them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.browser.chromium import CHROMIUM

if importlib.util.find_spec("playwright") is None or not CHROMIUM.exists():
    raise pytest.UsageError(
        "tests/browser needs Playwright and Debian's Chromium: `apt-get install -y chromium`, "
        "then `uv run --group browser pytest tests/browser`"
    )

from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.chromium import fresh_page, launch
from tests.e2e.conftest import server_for

__all__ = ["server_for"]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    yield from fresh_page(chromium)
