"""Hostile WebSocket clients against the real process: the session ends cleanly and is
counted, the service stays ready, and no task, thread or descriptor leaks."""

import asyncio
import contextlib
import json
import socket
import time
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import wait_for
from tests.metrics import scrape, value
from tests.rawhttp import closed_by_server
from tests.server import ServerFactory

# CLIENT_TIMEOUT_SECS: short for the tests that wait for it, long enough for the probes.
ENV = {"WS_MAX_MESSAGE_BYTES": "2048", "CLIENT_TIMEOUT_SECS": "2", "MAX_SESSIONS": "500"}


def health(url: str) -> dict[str, Any]:
    figures: dict[str, Any] = httpx.get(f"{url}/health").json()
    return figures


async def settle(url: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        figures = health(url)
        if figures["activeSessions"] == 0:
            return figures
        await asyncio.sleep(0.05)
    raise AssertionError("sessions did not end")


def open_fds(url: str) -> int:
    return int(health(url)["process"]["openFds"])


def finished(url: str, state: str) -> float:
    return value(scrape(url), "botdock_sessions_finished_total", kind="websocket", state=state)


async def test_message_over_max_size_closes_with_1009(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    async with connect(f"{server.ws_url}/ws", max_size=None) as ws:
        await ws.recv()
        await ws.send("x" * 5000)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
    await settle(server.url)
    assert finished(server.url, "completed") == 1
    assert httpx.get(f"{server.url}/readyz").status_code == 200


async def test_binary_to_the_echo_bot_is_echoed_and_counts(server_for: ServerFactory) -> None:
    server = server_for({**ENV, "BOT_MODULE": "tests.bots.echo"})
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.send(b"\x00\x01binary")
        assert await asyncio.wait_for(ws.recv(), 5) == b"\x00\x01binary"
        await ws.send("text after binary")
        assert await asyncio.wait_for(ws.recv(), 5) == "text after binary"
    await settle(server.url)
    assert finished(server.url, "completed") == 1


async def test_binary_to_a_text_only_bot_fails_only_that_session(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.recv()
        await ws.send(b"\x00binary")
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1011
    await settle(server.url)
    assert finished(server.url, "failed") == 1
    assert httpx.get(f"{server.url}/readyz").status_code == 200


async def test_abrupt_disconnects_end_sessions_cleanly(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    before = health(server.url)["process"]
    for _ in range(20):
        ws = await connect(f"{server.ws_url}/ws")
        await ws.recv()
        ws.transport.abort()  # no close frame: a TCP reset mid-session
    figures = await settle(server.url)
    assert finished(server.url, "completed") == 20
    assert figures["process"]["openFds"] <= before["openFds"]
    assert figures["process"]["asyncioTasks"] <= before["asyncioTasks"]
    assert figures["process"]["threads"] <= before["threads"]


async def test_ping_flood_does_not_stall_the_service(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.recv()
        waiters = [await ws.ping() for _ in range(2000)]
        await asyncio.wait_for(asyncio.gather(*waiters), 20)
        await ws.send("still here")
        assert await ws.recv() == "still here"
    assert httpx.get(f"{server.url}/livez").status_code == 200
    await settle(server.url)


async def test_handshakes_that_never_send_a_byte_are_reaped(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    before = health(server.url)["process"]
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    try:
        wait_for(lambda: open_fds(server.url) >= before["openFds"] + 200)  # all accepted
        assert httpx.get(f"{server.url}/livez").status_code == 200
        for sock in sockets:  # each answered and closed at CLIENT_TIMEOUT_SECS
            sock.settimeout(20)
            assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
            assert closed_by_server(sock)
        wait_for(lambda: open_fds(server.url) <= before["openFds"] + 2)
    finally:
        for sock in sockets:
            sock.close()
    assert health(server.url)["activeSessions"] == 0


async def test_half_open_websocket_upgrade_is_reaped(server_for: ServerFactory) -> None:
    server = server_for(ENV)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n")  # never finished
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 408")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
