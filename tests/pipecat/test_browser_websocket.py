"""Pipecat's JS client SDK in Chromium, over a WebSocket session, against the RTVI echo bot of
examples/: the console (`startBotAndConnect` against `/start`) gets `bot-ready` and its client
request answered; with `API_KEY` set, client-js in the page connects holding only the session's
token that the app's backend got from `/start`."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, WebSocket, expect

from tests import secrets
from tests.helpers import wait_for
from tests.pipecat.browser import (
    RTVI_ECHO,
    chromium,
    final_state,
    needs_rtvi_echo_bot,
    open_console,
    page,
)
from tests.server import ServerFactory

__all__ = ["chromium", "page"]
pytestmark = needs_rtvi_echo_bot


def test_console_gets_bot_ready_and_an_answer_from_the_rtvi_echo_bot(
    server_for: ServerFactory, page: Page
) -> None:
    server = server_for(RTVI_ECHO)
    open_console(page, server)
    page.click("#chat-start")
    log = page.locator("#log")
    expect(log).to_contain_text("chat: bot-ready", timeout=15000)
    page.fill("#chat-type", "echo")
    page.fill("#chat-text", "hello pipecat")
    page.click("#chat-send")
    expect(log).to_contain_text('chat: response {"text":"hello pipecat"}')
    [session] = httpx.get(server.url + "/sessions").json()["sessions"]
    page.click("#chat-stop")
    expect(page.locator("#chat-state")).to_have_text("disconnected")
    wait_for(lambda: final_state(server, session["sessionId"]) is not None)
    assert final_state(server, session["sessionId"]) == "completed"


CONNECT_WITH_TOKEN = """async ([wsUrl, token]) => {
  const {PipecatClient, WebSocketTransport, ChatMediaManager} = window.botdockConsole.sdk;
  const client = new PipecatClient({
    transport: new WebSocketTransport({mediaManager: new ChatMediaManager()}),
    enableMic: false,
    enableCam: false,
  });
  const ready = await client.connect({wsUrl, token});
  const answer = await client.sendClientRequest("echo", {n: 42}, 10000);
  await client.disconnect();
  return {ready: ready !== undefined, answer};
}"""


def test_client_js_with_an_api_key_holds_only_its_session_token(
    server_for: ServerFactory, page: Page
) -> None:
    server = server_for({**RTVI_ECHO, "API_KEY": secrets.API_KEY})
    # The app's backend starts the session with the key; the browser gets {wsUrl, token}.
    started = httpx.post(
        server.url + "/start",
        json={"transport": "websocket"},
        headers={"Authorization": f"Bearer {secrets.API_KEY}"},
    )
    assert started.status_code == 201, started.text
    params = started.json()
    assert set(params) == {"wsUrl", "token"}
    sockets: list[str] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket.url)

    page.on("websocket", opened)
    open_console(page, server)  # the page is given no key
    result = page.evaluate(CONNECT_WITH_TOKEN, [params["wsUrl"], params["token"]])
    assert result == {"ready": True, "answer": {"n": 42}}
    [url] = sockets
    assert secrets.API_KEY not in url
    assert page.evaluate("sessionStorage.length") == 0
