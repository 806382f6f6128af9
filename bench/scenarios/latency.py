"""2. Start latency: sequential session starts; for the service, from the request being sent
to the bot being entered (the stamp bot reads the same system-wide CLOCK_MONOTONIC); for the
baseline, the round trip of the same request to its bare route."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from bench.context import Context
from bench.report import Row, Target, compared, percentile
from bench.servers import BASELINE, SERVICE, Server

NAME = "2. start latency"
ENDPOINTS = ("/start", "/bot")


def _body(path: str, i: int) -> bytes:
    data = {"i": i}
    return json.dumps({"body": data} if path == "/start" else data).encode()


async def sequential(
    ctx: Context, server: Server, path: str, first: int, count: int
) -> dict[int, tuple[int, int]]:
    """`count` requests one after another on one keep-alive connection: {i: (sent, answered)}
    in CLOCK_MONOTONIC nanoseconds."""
    headers = {"content-type": "application/json"}
    ok = 200 if server.kind == BASELINE or path == "/bot" else 201
    times: dict[int, tuple[int, int]] = {}
    bad = 0
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = server.url + path
        for i in range(first, first + count):
            body = _body(path, i)
            sent = time.monotonic_ns()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                answered = time.monotonic_ns()
                bad += response.status != ok
            times[i] = (sent, answered)
    if bad:
        ctx.error(NAME, f"{server.kind} POST {path}: {bad} unexpected statuses")
    return times


async def read_stamps(ctx: Context, path: Path, wanted: range) -> dict[int, int]:
    """The stamp bot's `i entered_ns` lines for `wanted`, waiting briefly for the last ones."""
    stamps: dict[int, int] = {}
    for _ in range(200):
        stamps = {}
        for line in path.read_text().splitlines():
            i, ns = line.split()
            if int(i) in wanted:
                stamps[int(i)] = int(ns)
        if len(stamps) == len(wanted):
            break
        await asyncio.sleep(0.01)
    if len(stamps) != len(wanted):
        ctx.error(NAME, f"the stamp bot recorded {len(stamps)} of {len(wanted)} sessions")
    return stamps


async def run(ctx: Context) -> list[Row]:
    count = 300 if ctx.quick else 2000
    warm = 50 if ctx.quick else 200
    stamp_file = ctx.workdir / "stamps.txt"
    stamp_file.touch()
    settings = {"BOT_MODULE": "bench.bots.stamp", "STAMP_FILE": str(stamp_file)}
    ctx.settings[NAME] = {"BOT_MODULE": "bench.bots.stamp"}
    baseline = ctx.server(BASELINE).start()
    service = ctx.server(SERVICE, settings).start()
    ms = 1e-6
    pairs: dict[str, dict[str, list[tuple[float, float]]]] = {
        p: {"p50": [], "p99": [], "rtt50": [], "rtt99": []} for p in ENDPOINTS
    }
    next_i = 0
    try:
        for server in (baseline, service):  # warm both: imports, connection, code paths
            for path in ENDPOINTS:
                await sequential(ctx, server, path, 10**9 + next_i, warm)
                next_i += warm
        for rep in range(ctx.reps):
            for path in ENDPOINTS:
                base = await sequential(ctx, baseline, path, next_i, count)
                base_rtt = [(a - s) * ms for s, a in base.values()]
                first = next_i
                serv = await sequential(ctx, service, path, first, count)
                next_i += count
                stamps = await read_stamps(ctx, stamp_file, range(first, first + count))
                entered = [(stamps[i] - serv[i][0]) * ms for i in stamps]
                serv_rtt = [(a - s) * ms for s, a in serv.values()]
                row = pairs[path]
                row["p50"].append((percentile(base_rtt, 50), percentile(entered, 50)))
                row["p99"].append((percentile(base_rtt, 99), percentile(entered, 99)))
                row["rtt50"].append((percentile(base_rtt, 50), percentile(serv_rtt, 50)))
                row["rtt99"].append((percentile(base_rtt, 99), percentile(serv_rtt, 99)))
                ctx.log(
                    f"rep {rep + 1} POST {path}: baseline round trip p50 "
                    f"{percentile(base_rtt, 50):.3f} ms; service sent->entered p50 "
                    f"{percentile(entered, 50):.3f} ms p99 {percentile(entered, 99):.3f} ms, "
                    f"round trip p50 {percentile(serv_rtt, 50):.3f} ms"
                )
    finally:
        baseline.stop()
        service.stop()
    rows = []
    for path in ENDPOINTS:
        row = pairs[path]
        rows += [
            compared(
                NAME,
                f"POST {path} sent->bot entered p50 (baseline: round trip)",
                "ms",
                row["p50"],
                kind="diff",
                target=Target("diff", "<=", 0.15, "<= +0.15 ms"),
                reference="+0.31 ms",
                digits=3,
            ),
            compared(
                NAME,
                f"POST {path} sent->bot entered p99 (baseline: round trip)",
                "ms",
                row["p99"],
                kind="diff",
                digits=3,
            ),
            compared(NAME, f"POST {path} round trip p50", "ms", row["rtt50"], "diff", digits=3),
            compared(NAME, f"POST {path} round trip p99", "ms", row["rtt99"], "diff", digits=3),
        ]
    return rows
