"""Limits that hold below the routes, against the real process: every request's headers and
body arrive within CLIENT_TIMEOUT_SECS on every route, pipelined or not, and a WebSocket
peer that floods pings and never reads the pongs holds a bounded amount of memory and gets
its connection closed, even on a socket refused for a missing API key."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.rawhttp import connect, read_response
from tests.server import ServerFactory, ServerProcess

API_KEY = "protocol-limits-key-0123456789abcdef"
ENV = {"CLIENT_TIMEOUT_SECS": "1", "MAX_SESSIONS": "50"}
TIMEOUT = "request {} not received within 1s (CLIENT_TIMEOUT_SECS)"

# A masked ping with the largest control payload (125 bytes) and an all-zero mask.
PING = b"\x89\xfd\x00\x00\x00\x00" + b"p" * 125
FLOOD_BYTES = 64 * 1024 * 1024
FLOOD_SECS = 30.0
MAX_GROWTH_BYTES = 20 * 1024 * 1024


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


def peak_rss(server: ServerProcess) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def raw_websocket(server: ServerProcess, path: str = "/ws") -> socket.socket:
    """A WebSocket handshake on a raw socket with a small receive buffer, so that what the
    peer does not read stays on the server's side."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def flood_pings(sock: socket.socket) -> tuple[int, bool]:
    """Send pings, never reading, until FLOOD_BYTES are sent, FLOOD_SECS pass, the server
    stops reading or it closes the connection; return the bytes sent and whether it was
    closed."""
    chunk = PING * (65536 // len(PING))
    sent = 0
    started = time.monotonic()
    sock.settimeout(5)
    while sent < FLOOD_BYTES and time.monotonic() - started < FLOOD_SECS:
        try:
            sock.sendall(chunk)
        except TimeoutError:
            break  # not read any more, yet not closed
        except (BrokenPipeError, ConnectionResetError):
            return sent, True
        sent += len(chunk)
    # All sent (the server may read faster than it must act): keep pinging a little, never
    # reading, until it drops the connection or the close deadline is well past.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sock.sendall(PING)
        except (BrokenPipeError, ConnectionResetError):
            return sent, True
        except TimeoutError:
            pass
        time.sleep(0.2)
    return sent, False


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked frame from the server: its opcode and payload."""
    head = sock.recv(2, socket.MSG_WAITALL)
    assert len(head) == 2 and head[1] < 126, head
    return head[0] & 0x0F, sock.recv(head[1], socket.MSG_WAITALL)


def test_ping_flood_that_never_reads_the_pongs_is_bounded_and_closed(
    server: ServerProcess,
) -> None:
    time.sleep(0.5)
    before = peak_rss(server)
    with raw_websocket(server) as sock:
        sent, closed = flood_pings(sock)
    growth = peak_rss(server) - before
    figures = f"{sent / 2**20:.0f} MB of pings sent, peak RSS {growth / 2**20:+.1f} MB"
    assert closed, f"still open: {figures}"
    assert growth < MAX_GROWTH_BYTES, figures
    assert_healthy(server)


def test_ping_flood_on_a_refused_socket_is_bounded_and_closed(server_for: ServerFactory) -> None:
    server = server_for({**ENV, "API_KEY": API_KEY})
    time.sleep(0.5)
    before = peak_rss(server)
    with raw_websocket(server) as sock:
        opcode, payload = read_frame(sock)  # no key: accepted, then closed with 4401
        assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 4401)
        sent, closed = flood_pings(sock)
    growth = peak_rss(server) - before
    figures = f"{sent / 2**20:.0f} MB of pings sent, peak RSS {growth / 2**20:+.1f} MB"
    assert closed, f"still open: {figures}"
    assert growth < MAX_GROWTH_BYTES, figures
    assert_healthy(server, API_KEY)
