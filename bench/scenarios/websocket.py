"""3. WebSocket echo: 1 and 20 connections sending small text messages, each waiting for its
echo before the next; round trips per second through the echo bot vs the bare echo."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.context import Context
from bench.report import Row, Target, compared
from bench.servers import BASELINE, SERVICE, Server

NAME = "3. WebSocket echo"
MESSAGE = "hello, botdock!!"  # 16 bytes
CONNECTIONS = (1, 20)
SETTINGS = {"BOT_MODULE": "bench.bots.echo", "MAX_SESSIONS": "2000"}


async def ping_pong(ws: aiohttp.ClientWebSocketResponse, stop: float) -> int:
    loop = asyncio.get_running_loop()
    done = 0
    while loop.time() < stop:
        await ws.send_str(MESSAGE)
        reply = await ws.receive()
        if reply.type is not aiohttp.WSMsgType.TEXT or reply.data != MESSAGE:
            raise RuntimeError(f"bad echo: {reply.type.name} {reply.data!r}")
        done += 1
    return done


async def window(server: Server, connections: int, seconds: float) -> tuple[float, float]:
    """Round trips per second and server CPU microseconds per round trip over one window;
    the connections are opened (and their sessions started) before it."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [await session.ws_connect(f"{server.ws_url}/ws") for _ in range(connections)]
        try:
            warm = loop.time() + min(0.5, seconds / 4)
            await asyncio.gather(*(ping_pong(ws, warm) for ws in sockets))
            cpu0, t0 = server.cpu_seconds(), time.monotonic()
            counts = await asyncio.gather(*(ping_pong(ws, loop.time() + seconds) for ws in sockets))
            elapsed, cpu = time.monotonic() - t0, server.cpu_seconds() - cpu0
        finally:
            for ws in sockets:
                await ws.close()
    total = sum(counts)
    return total / elapsed, cpu / total * 1e6


async def run(ctx: Context) -> list[Row]:
    seconds = 1.5 if ctx.quick else 5.0
    ctx.settings[NAME] = SETTINGS
    baseline = ctx.server(BASELINE).start()
    service = ctx.server(SERVICE, SETTINGS).start()
    rtps: dict[int, list[tuple[float, float]]] = {n: [] for n in CONNECTIONS}
    cpu: dict[int, list[tuple[float, float]]] = {n: [] for n in CONNECTIONS}
    try:
        for rep in range(ctx.reps):
            for n in CONNECTIONS:
                b_rt, b_cpu = await window(baseline, n, seconds)
                s_rt, s_cpu = await window(service, n, seconds)
                rtps[n].append((b_rt, s_rt))
                cpu[n].append((b_cpu, s_cpu))
                ctx.log(
                    f"rep {rep + 1} {n} connection(s): baseline {b_rt:,.0f}/s {b_cpu:.0f} us, "
                    f"service {s_rt:,.0f}/s {s_cpu:.0f} us"
                )
    finally:
        baseline.stop()
        service.stop()
    rows = []
    for n in CONNECTIONS:
        rows.append(
            compared(
                NAME,
                f"{n} connection{'s' if n > 1 else ''}: round trips/s",
                "/s",
                rtps[n],
                target=Target("ratio", ">=", 0.95, ">= 0.95x") if n == 20 else None,
                reference="0.61x" if n == 20 else "",
                digits=0,
            )
        )
        rows.append(
            compared(
                NAME,
                f"{n} connection{'s' if n > 1 else ''}: server CPU/round trip",
                "us",
                cpu[n],
                digits=0,
            )
        )
    return rows
