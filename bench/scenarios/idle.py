"""4. Many idle sessions: 1,000 WebSocket sessions held open (each one echo, then silence);
server RSS before and during, and `/livez` latency while they are open. Fresh processes for
every repetition, so memory from an earlier round cannot hide the cost."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from bench.context import Context
from bench.report import Row, Target, compared, percentile
from bench.servers import BASELINE, SERVICE, Server

NAME = "4. idle sessions"
SETTINGS = {"BOT_MODULE": "bench.bots.echo", "MAX_SESSIONS": "2000"}
OPENING = 50  # handshakes in flight at once


async def livez(session: aiohttp.ClientSession, server: Server, count: int) -> list[float]:
    """Sequential `GET /livez` round trips on one keep-alive connection, in milliseconds."""
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        async with session.get(server.url + "/livez") as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"/livez answered {response.status}")
        times.append((time.perf_counter() - t0) * 1e3)
    return times


async def open_sessions(
    session: aiohttp.ClientSession, server: Server, count: int
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(OPENING)

    async def one() -> aiohttp.ClientWebSocketResponse:
        async with gate:
            ws = await session.ws_connect(f"{server.ws_url}/ws", autoclose=False)
            await ws.send_str("hi")  # proves the session runs: the bot is in its loop
            reply = await ws.receive()
            if reply.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"session refused or ended: {reply.type.name} {reply.data}")
            return ws

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
    gate = asyncio.Semaphore(OPENING * 2)

    async def one(ws: aiohttp.ClientWebSocketResponse) -> None:
        async with gate:
            await ws.close()

    await asyncio.gather(*(one(ws) for ws in sockets))


async def measure(ctx: Context, server: Server, count: int, probes: int) -> dict[str, float]:
    server.start()
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await close_all(await open_sessions(session, server, 20))  # warm up code paths
            await livez(session, server, 50)
            await asyncio.sleep(0.3)
            quiet = await livez(session, server, probes)
            rss0 = server.rss_kb()
            sockets = await open_sessions(session, server, count)
            await asyncio.sleep(0.5)
            rss1 = server.rss_kb()
            busy = await livez(session, server, probes)
            if server.kind == SERVICE:
                async with session.get(server.url + "/health") as response:
                    active = json.loads(await response.read())["activeSessions"]
                if active != count:
                    ctx.error(NAME, f"service reports {active} active sessions, not {count}")
            dropped = sum(ws.closed for ws in sockets)
            if dropped:
                ctx.error(NAME, f"{server.kind}: {dropped} of {count} sessions closed early")
            await close_all(sockets)
    finally:
        server.stop()
    return {
        "rss_before_mb": rss0 / 1024,
        "rss_during_mb": rss1 / 1024,
        "kb_per_session": (rss1 - rss0) / count,
        "livez_p50_quiet_ms": percentile(quiet, 50),
        "livez_p99_quiet_ms": percentile(quiet, 99),
        "livez_p50_ms": percentile(busy, 50),
        "livez_p99_ms": percentile(busy, 99),
    }


async def run(ctx: Context) -> list[Row]:
    count = 300 if ctx.quick else 1000
    probes = 300 if ctx.quick else 1000
    ctx.settings[NAME] = SETTINGS
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    for rep in range(ctx.reps):
        base = await measure(ctx, ctx.server(BASELINE), count, probes)
        service = ctx.server(SERVICE, SETTINGS)
        serv = await measure(ctx, service, count, probes)
        pairs.append((base, serv))
        ctx.log(
            f"rep {rep + 1}: baseline {base['kb_per_session']:.1f} KB/session, /livez p99 "
            f"{base['livez_p99_ms']:.2f} ms; service {serv['kb_per_session']:.1f} KB/session, "
            f"/livez p99 {serv['livez_p99_ms']:.2f} ms"
        )

    def of(key: str) -> list[tuple[float, float]]:
        return [(b[key], s[key]) for b, s in pairs]

    n = f"{count:,}"
    return [
        compared(NAME, "RSS before", "MB", of("rss_before_mb"), digits=1),
        compared(NAME, f"RSS with {n} sessions open", "MB", of("rss_during_mb"), digits=1),
        compared(
            NAME,
            "RSS per idle session",
            "KB",
            of("kb_per_session"),
            target=Target("service", "<=", 32, "<= 32 KB"),
            reference="35 KB; bare echo 28 KB",
            digits=1,
        ),
        compared(NAME, "/livez p50, no sessions", "ms", of("livez_p50_quiet_ms"), digits=3),
        compared(NAME, "/livez p99, no sessions", "ms", of("livez_p99_quiet_ms"), digits=3),
        compared(NAME, f"/livez p50, {n} open", "ms", of("livez_p50_ms"), digits=3),
        compared(
            NAME,
            f"/livez p99, {n} open",
            "ms",
            of("livez_p99_ms"),
            target=Target("service", "<=", 2.0, "<= 2 ms"),
            digits=3,
        ),
    ]
