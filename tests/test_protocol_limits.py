"""Limits that hold below the routes, against the real process: every request's headers and
body arrive within CLIENT_TIMEOUT_SECS on every route, pipelined or not."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.rawhttp import connect, read_response
from tests.server import ServerProcess

ENV = {"CLIENT_TIMEOUT_SECS": "1", "MAX_SESSIONS": "50"}
TIMEOUT = "request {} not received within 1s (CLIENT_TIMEOUT_SECS)"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess({"BOT_MODULE": "tests.bots.recorder", **ENV}).start()
    yield proc
    proc.stop()


def request(method: str, path: str, body: bytes | None = None) -> bytes:
    head = method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n"
    if body is None:
        return head + b"\r\n"
    return (
        head + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def drip(
    sock: socket.socket, pieces: Iterator[bytes], interval: float, limit: float
) -> tuple[float, bytes]:
    """Send a piece every `interval` seconds until the server closes the connection (or
    `limit` seconds pass); return how long that took and what the server sent meanwhile."""
    received = b""
    started = time.monotonic()
    sock.settimeout(interval)
    try:
        while time.monotonic() - started < limit:
            sock.sendall(next(pieces))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            received += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    return min(time.monotonic() - started, limit), received


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP responses in `data`, in order."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def assert_healthy(server: ServerProcess, key: str | None = None) -> None:
    """Probes answer 200, and a session still starts, over HTTP and over a WebSocket."""
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    auth = {"authorization": f"Bearer {key}"} if key else None
    response = httpx.post(f"{server.url}/bot", json={}, headers=auth, timeout=10)
    assert (response.status_code, response.json()) == (200, {})
    query = f"?token={key}" if key else ""
    with ws_connect(f"{server.ws_url}/ws{query}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["class"] == "WebSocketSessionArguments"
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"


def test_slow_body_on_a_route_that_never_reads_it_is_cut(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        # One body byte every 0.3 s would hold the connection for 3.5 days.
        lasted, received = drip(sock, iter(lambda: b"x", None), interval=0.3, limit=10)
    assert [(status, json.loads(body)) for status, _, body in responses(received)] == [
        (200, {"status": "ok"})
    ]
    assert lasted < 6  # CLIENT_TIMEOUT_SECS is 1
    # A body sent in two parts within the deadline, on a connection kept alive across an
    # idle pause longer than the deadline, is served as usual.
    with connect(server.port) as sock:
        for _ in range(2):
            raw = request("POST", "/bot", b'{"a": 1}')
            sock.sendall(raw[:-4])
            time.sleep(0.3)
            sock.sendall(raw[-4:])
            status, _, body = read_response(sock)
            assert (status, json.loads(body)) == (200, {})
            time.sleep(1.5)
    assert_healthy(server)


def test_slow_body_on_a_route_that_reads_it_gets_408_and_close(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(request("POST", "/bot", b'{"a": 1}' + b" " * 992)[:-990])
        lasted, received = drip(sock, iter(lambda: b" ", None), interval=0.3, limit=10)
    [(status, headers, body)] = responses(received)
    assert (status, headers.get("connection")) == (408, "close")
    assert json.loads(body) == {"error": "request_timeout", "detail": TIMEOUT.format("body")}
    assert lasted < 6
    assert_healthy(server)


def test_pipelined_requests_are_served_and_slow_headers_behind_them_are_cut(
    server: ServerProcess,
) -> None:
    third = request("POST", "/bot", b'{"third": true}')
    with connect(server.port) as sock:
        # The second request runs the bot for 2 s; the third's body arrives in two parts
        # while it runs, within the deadline; the fourth's headers then trickle in for ever.
        sock.sendall(
            request("GET", "/livez") + request("POST", "/bot", b'{"sleep": 2}') + third[:-5]
        )
        time.sleep(0.3)
        sock.sendall(third[-5:] + b"GET /readyz HTTP/1.1\r\n")
        lines = (b"X-Drip-%d: 1\r\n" % i for i in range(1000))
        lasted, received = drip(sock, lines, interval=0.3, limit=12)
    answers = responses(received)
    assert [(status, json.loads(body)) for status, _, body in answers] == [
        (200, {"status": "ok"}),
        (200, {}),
        (200, {}),
        (408, {"error": "request_timeout", "detail": TIMEOUT.format("headers")}),
    ]
    assert answers[-1][1]["connection"] == "close"
    assert lasted < 8  # the bot's 2 s, then closed
    assert_healthy(server)
