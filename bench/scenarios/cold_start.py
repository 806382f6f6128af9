"""5. Cold start: from the process exec to the first `/readyz` 200 (polled every
millisecond on a fresh connection), the service with default settings and the bench's no-op bot
(never the user's bot.py, whose imports would be measured instead)."""

from __future__ import annotations

from bench.context import Context
from bench.report import Row, Target, compared
from bench.servers import BASELINE, SERVICE

NAME = "5. cold start"


def once(ctx: Context, kind: str) -> float:
    server = ctx.server(kind, {"BOT_MODULE": "bench.bots.noop"})
    server.spawn()
    try:
        return server.wait_ready() * 1e3
    finally:
        code = server.stop()
        if not server.exited_cleanly():
            ctx.error(NAME, f"{kind} exited with {code} on SIGTERM")


async def run(ctx: Context) -> list[Row]:
    reps = 3 if ctx.quick else max(10, ctx.reps)
    once(ctx, BASELINE)  # page cache and bytecode caches warm for both
    once(ctx, SERVICE)
    pairs = []
    for _ in range(reps):
        pairs.append((once(ctx, BASELINE), once(ctx, SERVICE)))
    ctx.log(
        "baseline "
        + " ".join(f"{b:.0f}" for b, _ in pairs)
        + " ms; service "
        + " ".join(f"{s:.0f}" for _, s in pairs)
        + " ms"
    )
    return [
        compared(
            NAME,
            f"exec to first /readyz 200 (median of {reps})",
            "ms",
            pairs,
            target=Target("ratio", "<=", 1.25, "<= 1.25x"),
            reference="1.6x",
            digits=0,
        )
    ]
