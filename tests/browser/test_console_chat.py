"""Chatting through the console: Pipecat's client SDK with its websocket transport, started by
`startBotAndConnect({endpoint: '/start', requestData: {transport: 'websocket'}})`, against the
echo bot (which sends every frame back, so the page receives its own RTVI messages)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, WebSocket, expect

from tests import secrets
from tests.browser.test_console import ECHO, open_console, session_ids
from tests.helpers import wait_for
from tests.server import ServerFactory, ServerProcess


def start_chat(page: Page) -> None:
    page.click("#chat-start")
    expect(page.locator("#chat-state")).to_have_text("ready")


def send(page: Page, text: str) -> None:
    page.fill("#chat-text", text)
    page.click("#chat-send")


def test_console_chats_with_the_echo_bot_and_stops(server_for: ServerFactory, page: Page) -> None:
    server = server_for(ECHO)
    open_console(page, server)
    start_chat(page)
    log = page.locator("#log")
    expect(log).to_contain_text('chat: received client-ready {"version":')
    send(page, "hello bot")
    expect(log).to_contain_text(
        'chat: received client-message {"t":"chat","d":{"text":"hello bot"}}'
    )
    [session_id] = session_ids(server)
    expect(page.locator(f'tr[data-session-id="{session_id}"]')).to_contain_text("websocket")

    page.click("#chat-stop")
    expect(page.locator("#chat-state")).to_have_text("disconnected")
    wait_for(lambda: session_ids(server) == [])
    assert f"| {session_id} | app.sessions | session completed kind=websocket" in server.log()
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_console_shows_why_the_server_closed_the_socket(
    server_for: ServerFactory, page: Page
) -> None:
    server = server_for(ECHO)
    open_console(page, server)
    start_chat(page)
    [session_id] = session_ids(server)
    page.click("#sessions-refresh")
    page.locator(f'tr[data-session-id="{session_id}"]').get_by_role("button", name="Cancel").click()
    expect(page.locator("#chat-close")).to_have_text("closed: 1001 cancelled by request")
    expect(page.locator("#chat-state")).to_have_text("disconnected")
    wait_for(lambda: session_ids(server) == [])


def test_console_with_an_api_key_connects_holding_only_the_session_token(
    server_for: ServerFactory, page: Page
) -> None:
    server: ServerProcess = server_for({**ECHO, "API_KEY": secrets.API_KEY})
    sockets: list[str] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket.url)

    page.on("websocket", opened)
    open_console(page, server)
    page.fill("#key", secrets.API_KEY)
    page.click("#key-save")
    start_chat(page)
    send(page, "keyed")
    expect(page.locator("#log")).to_contain_text('"d":{"text":"keyed"}')
    [url] = sockets
    assert url.startswith(server.ws_url + "/ws?")
    assert secrets.API_KEY not in url
