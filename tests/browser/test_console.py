"""The dev console at `/` in Chromium against the real service: sessions listed and cancelled,
the API key asked for and sent only where it belongs, a WebSocket chat with the echo bot through
Pipecat's client SDK, and WebRTC said to be unavailable when the server takes no offers."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, Request, expect

from tests import secrets
from tests.helpers import wait_for
from tests.server import ServerFactory, ServerProcess

ECHO = {"BOT_MODULE": "tests.bots.echo"}


def open_console(page: Page, server: ServerProcess) -> None:
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def session_ids(server: ServerProcess, key: str | None = None) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(server.url + "/sessions", headers=headers).json()
    return [session["sessionId"] for session in answer["sessions"]]


def test_console_lists_a_session_and_cancels_it(server_for: ServerFactory, page: Page) -> None:
    server = server_for({**ECHO, "SESSION_MODE": "websocket"})
    assert httpx.post(server.url + "/start").status_code == 201  # announced, waiting for /ws
    [session_id] = session_ids(server)
    open_console(page, server)
    row = page.locator(f'tr[data-session-id="{session_id}"]')
    expect(row).to_contain_text("websocket")
    expect(page.locator("#sessions-status")).to_have_text("1 active")

    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("#log")).to_contain_text(f"session {session_id}: cancel requested")
    wait_for(lambda: session_ids(server) == [])
    page.click("#sessions-refresh")
    expect(page.locator("#sessions-status")).to_have_text("0 active")
    expect(page.locator("#sessions-body tr")).to_have_count(0)
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_console_says_webrtc_is_unavailable_without_pipecat_webrtc(
    server_for: ServerFactory, page: Page
) -> None:
    server = server_for(ECHO)
    open_console(page, server)
    expect(page.locator("#talk-start")).to_be_disabled()
    expect(page.locator("#talk-note")).to_contain_text("WebRTC is not available on this server")


def test_console_asks_for_the_api_key_and_sends_it_only_to_start_and_sessions(
    server_for: ServerFactory, page: Page
) -> None:
    server = server_for({**ECHO, "API_KEY": secrets.API_KEY})
    keyed: list[str] = []
    urls: list[str] = []

    def seen(request: Request) -> None:
        urls.append(request.url)
        if "authorization" in request.headers:
            keyed.append(urlsplit(request.url).path)

    page.on("request", seen)
    page.on("websocket", lambda socket: urls.append(socket.url))
    open_console(page, server)
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#sessions-status")).to_have_text(
        "cannot list sessions: 401 unauthorized: missing API key: send Authorization: Bearer "
        "<API_KEY>"
    )

    page.fill("#key", "not-the-key")
    page.click("#key-save")
    expect(page.locator("#sessions-status")).to_have_text(
        "cannot list sessions: 401 unauthorized: invalid API key"
    )
    page.fill("#key", secrets.API_KEY)
    page.click("#key-save")
    expect(page.locator("#sessions-status")).to_have_text("0 active")
    assert page.evaluate("sessionStorage.getItem('botdock.apiKey')") == secrets.API_KEY

    page.click("#chat-start")
    wait_for(lambda: "/start" in keyed)
    assert set(keyed) <= {"/start", "/sessions"}, keyed
    assert not [url for url in urls if secrets.API_KEY in url]
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_console_off_answers_404_at_root(server_for: ServerFactory, page: Page) -> None:
    server = server_for({**ECHO, "CONSOLE_ENABLED": "false"})
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 404
    assert re.search(r'"error":\s*"not_found"', page.content())
