"""Debian's Chromium under Playwright, as every browser test launches it: headless, no sandbox
(root in CI), no network of its own (no QUIC, no background or component updates, no sync), and
a fake microphone that needs no permission prompt. Playwright never downloads a browser here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


def launch(playwright: Playwright, *extra: str) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*ARGS, *extra], headless=True
    )


def fresh_page(browser: Browser) -> Iterator[Page]:
    """For a `page` fixture: a fresh browser context (its own storage) and page; an uncaught
    page error fails the test."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
