"""Hostile HTTP that needs the real server and raw sockets (framing, header sizes, clients that
stall): each gets a clear 4xx in the JSON error shape, starts nothing, and leaves the service
healthy. Hostile bodies, methods and routes are in-process (inprocess/test_bad_input.py)."""

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.metrics import scrape
from tests.rawhttp import closed_by_server, connect, exchange, read_response
from tests.server import ServerFactory, ServerProcess

# CLIENT_TIMEOUT_SECS is short for the tests that wait for it, and 2 s rather than 1 so the
# well-behaved probes between them are never late on a loaded machine.
ENV = {"MAX_BODY_BYTES": "4096", "CLIENT_TIMEOUT_SECS": "2", "MAX_HEADER_BYTES": "8192"}


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def started(url: str) -> float:
    samples = scrape(url)
    return sum(v for (name, _), v in samples.items() if name == "botdock_sessions_started_total")


def assert_healthy(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert started(server.url) == 0


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server for the module's tests: each leaves it as it found it."""
    proc = ServerProcess({"BOT_MODULE": "tests.bots.recorder", **ENV}).start()
    yield proc
    proc.stop()
    proc.discard()


def test_chunked_body_over_limit_without_content_length(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(
            b"POST /bot HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"pad":"' + b"x" * 1000 + b'",'
        try:
            for _ in range(10):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = read_response(sock)
    assert status == 413
    assert json.loads(body) == {
        "error": "body_too_large",
        "detail": "request body is larger than MAX_BODY_BYTES (4096 bytes)",
    }
    assert_healthy(server)


def test_headers_over_size_get_431(server: ServerProcess) -> None:
    raw = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Filler: " + b"a" * 20000 + b"\r\n\r\n"
    status, headers, body = exchange(server.port, raw)
    assert (status, headers["connection"]) == (431, "close")
    assert body == {
        "error": "headers_too_large",
        "detail": "request headers are larger than MAX_HEADER_BYTES (8192 bytes)",
    }
    assert_healthy(server)


def test_connection_that_never_sends_a_byte_is_closed(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        started_at = time.monotonic()
        status, _, body = read_response(sock)
        waited = time.monotonic() - started_at
        assert closed_by_server(sock)
    assert status == 408
    assert json.loads(body) == {
        "error": "request_timeout",
        "detail": "request headers not received within 2s (CLIENT_TIMEOUT_SECS)",
    }
    assert waited > 1.8  # at the deadline, not before (the socket's own timeout caps the wait)
    assert_healthy(server)


def test_slowloris_headers_are_cut_at_the_deadline(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n")
        for i in range(8):  # a header line every 0.4 s, past the deadline, never completes it
            time.sleep(0.4)
            try:
                sock.sendall(b"X-Drip-%d: 1\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                break
        status, _, body = read_response(sock)
    assert status == 408
    assert json.loads(body)["error"] == "request_timeout"
    assert_healthy(server)


def test_slow_body_gets_408_and_starts_nothing(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(
            b"POST /bot HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"a": '
        )
        status, _, body = read_response(sock)
    assert status == 408
    assert json.loads(body) == {
        "error": "request_timeout",
        "detail": "request body not received within 2s (CLIENT_TIMEOUT_SECS)",
    }
    assert_healthy(server)


def test_idle_keep_alive_connections_do_not_block_others(server: ServerProcess) -> None:
    idle = [connect(server.port) for _ in range(50)]
    try:
        assert httpx.get(f"{server.url}/livez").status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_garbage_request_line_gets_400(server: ServerProcess) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        status, _, _ = read_response(sock)
    assert status == 400
    assert_healthy(server)


def test_invalid_utf8_in_a_header_is_handled(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    status, _, body = exchange(
        server.port, post("/bot", b"{}", b"x-daily-session-id: \xff\xfe\r\n")
    )
    assert status == 200 and body == {}
    samples = scrape(server.url)
    key = ("botdock_sessions_finished_total", (("kind", "pipecat"), ("state", "completed")))
    assert samples[key] == 1
