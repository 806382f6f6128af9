"""What the browser tests of tests/pipecat share: Chromium (Debian's, through Playwright), a page
whose uncaught errors fail the test, and the console opened on a server. Needs the `browser`
group next to `pipecat` (tests/pipecat/run_versions.sh installs both)."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator

import pytest

from tests.browser.chromium import CHROMIUM

if importlib.util.find_spec("playwright") is None or not CHROMIUM.exists():
    raise pytest.UsageError(
        "the browser tests of tests/pipecat need Playwright and Debian's Chromium: "
        "`apt-get install -y chromium` and the `browser` group (tests/pipecat/run_versions.sh)"
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.chromium import fresh_page, launch
from tests.pipecat.test_sessions import PLAIN_WEBSOCKET
from tests.server import ServerProcess

HAS_WORKER = importlib.util.find_spec("pipecat.pipeline.worker") is not None  # Pipecat 1.3+
# The RTVI echo bot of examples/ is written for Pipecat 1.3 and later.
needs_rtvi_echo_bot = pytest.mark.skipif(
    not (HAS_WORKER and PLAIN_WEBSOCKET),
    reason="the RTVI echo bot of examples/ is written for Pipecat 1.3 and later",
)
RTVI_ECHO = {"BOT_MODULE": "examples.rtvi_echo_bot"}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    yield from fresh_page(chromium)


def open_console(page: Page, server: ServerProcess) -> None:
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def final_state(server: ServerProcess, session_id: str) -> str | None:
    """The state the session ended in, from the one line it logs when it ends."""
    ended = re.search(
        rf"\| {re.escape(session_id)} \| app\.sessions \| session "
        r"(completed|failed|timed_out|cancelled) kind=",
        server.log(),
    )
    return ended.group(1) if ended else None
