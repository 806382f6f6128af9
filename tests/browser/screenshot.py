"""Saves docs/console.png: the console in Chromium against the real service running the echo
bot, one chat message sent and answered. Run after changing the console's look:

    uv run --group browser python -m tests.browser.screenshot
"""

from __future__ import annotations

import httpx
from playwright.sync_api import expect, sync_playwright

from tests.browser.chromium import launch
from tests.project import ROOT
from tests.server import ServerProcess

OUTPUT = ROOT / "docs" / "console.png"


def main() -> None:
    server = ServerProcess({"BOT_MODULE": "tests.bots.echo", "SESSION_MODE": "auto"})
    server.start()
    try:
        httpx.post(server.url + "/start", json={"transport": "websocket"})  # a waiting session
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(server.url + "/")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            page.click("#chat-start")
            expect(page.locator("#chat-state")).to_have_text("ready")
            page.fill("#chat-text", "Hello, bot!")
            page.click("#chat-send")
            expect(page.locator("#log")).to_contain_text("Hello, bot!")
            page.click("#sessions-refresh")
            expect(page.locator("#sessions-status")).to_have_text("2 active")
            page.screenshot(path=str(OUTPUT), full_page=True)
            browser.close()
    finally:
        server.stop(timeout=10)
        server.discard()
    print(f"saved {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
