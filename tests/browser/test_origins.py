"""ALLOWED_ORIGINS seen from a browser: a page served from another loopback port (another
origin) opens a WebSocket to the service. Named in ALLOWED_ORIGINS it talks to the bot; not
named, the page sees the socket closed with 4403 and the reason, and the service stays ready."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Page

from tests.server import ServerFactory

# The page opens a socket to the URL in its query and records how it ends.
PAGE = b"""<!doctype html><title>elsewhere</title><script>
const target = new URLSearchParams(location.search).get("ws");
window.outcome = new Promise((resolve) => {
  const socket = new WebSocket(target);
  const echoes = [];
  socket.onopen = () => socket.send("hello from elsewhere");
  socket.onmessage = (event) => { echoes.push(event.data); socket.close(1000, "done"); };
  socket.onclose = (event) => resolve({code: event.code, reason: event.reason, echoes});
});
</script>"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def elsewhere() -> Iterator[str]:
    """A page on another loopback port: its origin, as the browser sends it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def socket_outcome(page: Page, origin: str, ws_url: str) -> dict[str, object]:
    page.goto(f"{origin}/?ws={ws_url}")
    outcome: dict[str, object] = page.evaluate("window.outcome")
    return outcome


def test_a_page_from_an_origin_not_allowed_sees_4403(
    server_for: ServerFactory, page: Page, elsewhere: str
) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.echo", "ALLOWED_ORIGINS": "https://app.example"})
    outcome = socket_outcome(page, elsewhere, server.ws_url + "/ws")
    assert outcome == {
        "code": 4403,
        "reason": f"origin '{elsewhere}' is not in ALLOWED_ORIGINS",
        "echoes": [],
    }
    assert httpx.get(server.url + "/sessions").json()["sessions"] == []
    assert httpx.get(server.url + "/readyz").status_code == 200


def test_a_page_from_an_allowed_origin_talks_to_the_bot(
    server_for: ServerFactory, page: Page, elsewhere: str
) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.echo", "ALLOWED_ORIGINS": elsewhere})
    outcome = socket_outcome(page, elsewhere, server.ws_url + "/ws")
    assert outcome == {"code": 1000, "reason": "done", "echoes": ["hello from elsewhere"]}
