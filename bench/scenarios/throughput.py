"""1. Session start throughput: `POST /bot` and `POST /start` with a no-op async bot, 32
concurrent keep-alive clients; requests per second and server CPU per request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from bench.context import Context
from bench.report import Row, Target, compared
from bench.servers import BASELINE, SERVICE, Server

NAME = "1. start throughput"
CONCURRENCY = 32
ENDPOINTS = (("/bot", b"{}", 200), ("/start", b'{"body": {}}', 201))
SETTINGS = {"BOT_MODULE": "bench.bots.noop", "MAX_SESSIONS": "2000"}


async def load(
    session: aiohttp.ClientSession, url: str, body: bytes, seconds: float
) -> tuple[int, Counter[int]]:
    """`CONCURRENCY` clients, each sending its next request as soon as the last answered."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    headers = {"content-type": "application/json"}
    statuses: Counter[int] = Counter()

    async def client() -> int:
        done = 0
        while loop.time() < stop:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1
            done += 1
        return done

    counts = await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return sum(counts), statuses


async def window(
    ctx: Context, server: Server, path: str, body: bytes, ok: int, seconds: float
) -> tuple[float, float]:
    """Requests per second and server CPU microseconds per request over one window."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = server.url + path
        await load(session, url, body, min(1.0, seconds / 4))  # warm the connections
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        count, statuses = await load(session, url, body, seconds)
        elapsed, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
    expected = ok if server.kind == SERVICE else 200
    bad = {s: n for s, n in statuses.items() if s != expected}
    if bad:
        ctx.error(NAME, f"{server.kind} {path}: unexpected statuses {bad}")
    return count / elapsed, cpu / count * 1e6


async def run(ctx: Context) -> list[Row]:
    seconds = 2.0 if ctx.quick else 10.0
    ctx.settings[NAME] = SETTINGS
    baseline = ctx.server(BASELINE).start()
    service = ctx.server(SERVICE, SETTINGS).start()
    rps: dict[str, list[tuple[float, float]]] = {path: [] for path, _, _ in ENDPOINTS}
    cpu: dict[str, list[tuple[float, float]]] = {path: [] for path, _, _ in ENDPOINTS}
    try:
        for rep in range(ctx.reps):
            for path, body, ok in ENDPOINTS:
                b_rps, b_cpu = await window(ctx, baseline, path, body, ok, seconds)
                s_rps, s_cpu = await window(ctx, service, path, body, ok, seconds)
                rps[path].append((b_rps, s_rps))
                cpu[path].append((b_cpu, s_cpu))
                ctx.log(
                    f"rep {rep + 1} POST {path}: baseline {b_rps:,.0f}/s {b_cpu:.0f} us, "
                    f"service {s_rps:,.0f}/s {s_cpu:.0f} us"
                )
    finally:
        baseline.stop()
        service.stop()
    rows = []
    for path, _, _ in ENDPOINTS:
        rows.append(
            compared(
                NAME,
                f"POST {path} requests/s",
                "/s",
                rps[path],
                target=Target("ratio", ">=", 0.7, ">= 0.70x"),
                reference="0.31x",
                digits=0,
            )
        )
        rows.append(
            compared(
                NAME,
                f"POST {path} server CPU/request",
                "us",
                cpu[path],
                target=Target("ratio", "<=", 1.5, "<= 1.50x"),
                reference="3.4x",
                digits=0,
            )
        )
    return rows
