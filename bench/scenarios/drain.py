"""6. Drain: SIGTERM while short sessions run (half `POST /bot`, half `POST /start`); time
from the signal to the process's exit, and sessions lost (no final `completed` state, or a
`POST /bot` that got no 200). The baseline holds the same number of requests to a bare
route that sleeps as long; uvicorn waits for them before it exits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

import aiohttp

from bench.context import Context
from bench.report import Row, Target, compared
from bench.servers import BASELINE, SERVICE, Server

NAME = "6. drain"
SETTINGS = {"BOT_MODULE": "bench.bots.sleeper", "MAX_SESSIONS": "2000"}
HEADERS = {"content-type": "application/json"}


async def post(session: aiohttp.ClientSession, url: str, body: Mapping[str, object]) -> int:
    try:
        async with session.post(url, data=json.dumps(body), headers=HEADERS) as response:
            await response.read()
            return response.status
    except aiohttp.ClientError:
        return 0


async def active(session: aiohttp.ClientSession, server: Server) -> int:
    async with session.get(server.url + "/health") as response:
        return int(json.loads(await response.read())["activeSessions"])


async def _signal_during_sessions(
    ctx: Context, server: Server, count: int, sleep: float, signal_after: float
) -> tuple[float, int | None, list[int]]:
    """Start `count` sessions, SIGTERM `signal_after` seconds later, wait for the exit: the
    seconds it took, the exit code, and every request's status (0: no answer)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        fired = time.monotonic()
        if server.kind == SERVICE:
            body = {"sleep": sleep}
            calls = [post(session, server.url + "/bot", body) for _ in range(count // 2)]
            calls += [
                post(session, server.url + "/start", {"body": body})
                for _ in range(count - count // 2)
            ]
        else:
            calls = [post(session, f"{server.url}/sleep?secs={sleep}", {}) for _ in range(count)]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(max(0.0, fired + signal_after - time.monotonic()))
        if server.kind == SERVICE and (running := await active(session, server)) != count:
            ctx.error(NAME, f"only {running} of {count} sessions running at SIGTERM")
        signalled = time.monotonic()
        server.signal()
        code = await asyncio.to_thread(server.wait, 60)
        exited = time.monotonic() - signalled
        statuses = list(await asyncio.gather(*tasks))
    return exited, code, statuses


async def measure(
    ctx: Context, server: Server, count: int, sleep: float, signal_after: float
) -> tuple[float, int]:
    """Seconds from SIGTERM to exit, and sessions lost."""
    server.start()
    try:
        exited, code, statuses = await _signal_during_sessions(
            ctx, server, count, sleep, signal_after
        )
    finally:
        server.stop()
    if not server.exited_cleanly():
        ctx.error(NAME, f"{server.kind} exited with {code}")
    if server.kind == SERVICE:
        bot_ok = sum(s == 200 for s in statuses[: count // 2])
        start_ok = sum(s == 201 for s in statuses[count // 2 :])
        log = server.log()
        completed = log.count("| session completed kind=")
        lost = count - completed
        if bot_ok != count // 2 or start_ok != count - count // 2:
            ctx.error(NAME, f"service: {bot_ok} POST /bot 200s, {start_ok} POST /start 201s")
            lost = max(lost, count - bot_ok - start_ok)
    else:
        lost = count - sum(s == 200 for s in statuses)
    if lost:
        ctx.error(NAME, f"{server.kind}: {lost} of {count} sessions lost")
    return exited, lost


async def run(ctx: Context) -> list[Row]:
    count, sleep, signal_after = (50, 0.5, 0.25) if ctx.quick else (200, 1.0, 0.5)
    ctx.settings[NAME] = SETTINGS
    exits: list[tuple[float, float]] = []
    losses: list[tuple[float, float]] = []
    for rep in range(ctx.reps):
        base = ctx.server(BASELINE)
        b_exit, b_lost = await measure(ctx, base, count, sleep, signal_after)
        serv = ctx.server(SERVICE, SETTINGS)
        s_exit, s_lost = await measure(ctx, serv, count, sleep, signal_after)
        exits.append((b_exit, s_exit))
        losses.append((b_lost, s_lost))
        ctx.log(
            f"rep {rep + 1}: {count} sessions of {sleep}s, SIGTERM {signal_after}s after the "
            f"start: baseline exit {b_exit:.3f}s lost {b_lost}, "
            f"service exit {s_exit:.3f}s lost {s_lost}"
        )
    return [
        compared(
            NAME,
            f"SIGTERM to exit, {count} sessions of {sleep:g}s (signal at {signal_after:g}s)",
            "s",
            exits,
            kind="diff",
            digits=3,
        ),
        compared(
            NAME,
            "sessions lost",
            "",
            losses,
            kind="",
            target=Target("service", "<=", 0, "0"),
            reference="",
            digits=0,
        ),
    ]
