"""Soak: many short sessions in sequence and in bursts. Memory settles after warm-up, and open
descriptors, threads and asyncio tasks return to where they were. SOAK_SEQUENTIAL and
SOAK_BURSTS set the size (quick defaults here; docs/reliability.md has the full-mode figures
for 20,000 and 10 x 200)."""

import asyncio
import os
import time

import aiohttp
import httpx
import pytest

from tests.server import ServerFactory

pytestmark = pytest.mark.slow

SEQUENTIAL = int(os.environ.get("SOAK_SEQUENTIAL", "2000"))
BURSTS = int(os.environ.get("SOAK_BURSTS", "3"))
BURST_SIZE = 200
MB = 1024 * 1024


def process(url: str) -> dict[str, int]:
    figures: dict[str, int] = httpx.get(f"{url}/health").json()["process"]
    return figures


def test_soak_short_sessions(server_for: ServerFactory) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.echo", "MAX_SESSIONS": str(BURST_SIZE)})

    async def run() -> dict[str, int]:
        async with aiohttp.ClientSession(base_url=server.url) as client:

            async def one(i: int) -> None:
                async with client.post("/bot", json={"i": i}) as response:
                    assert response.status == 200, await response.text()

            warm = max(SEQUENTIAL // 10, 200)
            for i in range(warm):
                await one(i)
            baseline = process(server.url)
            for i in range(SEQUENTIAL - warm):
                await one(i)
            for _ in range(BURSTS):
                await asyncio.gather(*(one(i) for i in range(BURST_SIZE)))
            return baseline

    baseline = asyncio.run(run())  # the client and its kept-alive connections are closed now
    deadline = time.monotonic() + 10
    while True:  # until the server has let go of the connections, or the checks below fail
        after = process(server.url)
        back = [after[k] <= baseline[k] for k in ("openFds", "threads", "asyncioTasks")]
        if all(back) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    growth = after["rssBytes"] - baseline["rssBytes"]
    print(
        f"\nsoak: {SEQUENTIAL} sequential + {BURSTS}x{BURST_SIZE} burst sessions; RSS "
        f"{baseline['rssBytes'] / MB:.1f} -> {after['rssBytes'] / MB:.1f} MB "
        f"({growth / MB:+.2f} MB); fds {baseline['openFds']} -> {after['openFds']}; threads "
        f"{baseline['threads']} -> {after['threads']}; tasks {baseline['asyncioTasks']} -> "
        f"{after['asyncioTasks']}"
    )
    assert growth < 5 * MB
    assert after["openFds"] <= baseline["openFds"]
    assert after["threads"] <= baseline["threads"]
    assert after["asyncioTasks"] <= baseline["asyncioTasks"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["activeSessions"] == 0
    started = httpx.get(f"{server.url}/metrics").text
    expected = SEQUENTIAL + BURSTS * BURST_SIZE
    assert (
        f'botdock_sessions_finished_total{{kind="pipecat",state="completed"}} {expected}.0'
        in started
    )
