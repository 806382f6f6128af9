"""Faults inside the bot: the service stays ready and every session is counted right."""

import asyncio
import contextlib
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import b64, wait_for
from tests.metrics import scrape, value
from tests.server import ServerFactory


def counts(url: str, kind: str) -> dict[str, float]:
    samples = scrape(url)
    return {
        state: value(samples, "botdock_sessions_finished_total", kind=kind, state=state)
        for state in ("completed", "failed", "timed_out", "cancelled")
    }


def wait_idle(url: str) -> None:
    wait_for(lambda: httpx.get(f"{url}/health").json()["activeSessions"] == 0)


async def ws_session(url: str, body: dict[str, Any]) -> tuple[int | None, str | None]:
    async with connect(f"{url}/ws?body={b64(body)}") as ws:
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 20)
        return ws.close_code, ws.close_reason


def asyncio_tasks(url: str) -> int:
    return int(httpx.get(f"{url}/health").json()["process"]["asyncioTasks"])


def test_async_bot_faults(server_for: ServerFactory) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.faulty", "SESSION_TIMEOUT_SECS": "1"})
    tasks_before = asyncio_tasks(server.url)
    assert httpx.post(f"{server.url}/bot", json={"fault": "raise_now"}).status_code == 500
    assert httpx.post(f"{server.url}/bot", json={"fault": "never_return"}).status_code == 504
    assert (
        httpx.post(f"{server.url}/bot", json={"fault": "spawn_tasks", "outlive": 0.5}).json() == {}
    )
    assert asyncio.run(ws_session(server.ws_url, {"fault": "raise_after_close"}))[0] == 1000
    assert asyncio.run(ws_session(server.ws_url, {"fault": "close_socket"})) == (
        4000,
        "bot closed the socket itself",
    )
    assert asyncio.run(ws_session(server.ws_url, {"fault": "raise_now"}))[0] == 1011
    assert asyncio.run(ws_session(server.ws_url, {"fault": "never_return"}))[0] == 4408
    wait_idle(server.url)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert counts(server.url, "pipecat") == {
        "completed": 1, "failed": 1, "timed_out": 1, "cancelled": 0,
    }  # fmt: skip
    assert counts(server.url, "websocket") == {
        "completed": 1, "failed": 2, "timed_out": 1, "cancelled": 0,
    }  # fmt: skip
    # The tasks the bot spawned and left behind end on their own; the count returns.
    wait_for(lambda: asyncio_tasks(server.url) <= tasks_before)


def test_sync_bot_that_blocks_forever(server_for: ServerFactory) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.sync_blocker", "SESSION_TIMEOUT_SECS": "0.5",
                         "MAX_SESSIONS": "2"})  # fmt: skip
    for _ in range(3):  # more than MAX_SESSIONS: slots are released although threads block
        response = httpx.post(f"{server.url}/bot", json={})
        assert response.status_code == 504
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert counts(server.url, "pipecat")["timed_out"] == 3
    log = server.log()
    assert log.count("a plain (sync) bot cannot be interrupted") == 3
    # The blocked daemon threads never hold the process: SIGTERM still exits 0 promptly.
    server.signal()
    assert server.wait(10) == 0
