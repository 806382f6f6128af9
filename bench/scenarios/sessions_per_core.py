"""7. Sessions per core: N concurrent Pipecat echo pipelines (the RTVI echo bot, Pipecat's
protobuf serializer on `/ws`), each fed 20 ms frames of 16 kHz audio in real time, for
`inline`, `process` and one fresh process per session (Pipecat Cloud's model, the baseline);
N doubles from 1 until the lag passes 20 ms or the time budget ends. What is measured and how:
bench/voice_load.py.

Needs Pipecat (the `pipecat` group); without it the scenario says it is skipped. The
`process` model needs a service with SESSION_ISOLATION=process; without it, it is reported
as not available."""

from __future__ import annotations

import math
import os

from bench.context import Context
from bench.report import Row, compared, median
from bench.voice_load import MODELS, Step, climb, missing_requirement, sessions_held

NAME = "7. sessions per core"
BOT = "examples.rtvi_echo_bot"
BASELINE_MODEL = "fresh"


def plan(quick: bool) -> tuple[tuple[int, ...], float, float]:
    """Session counts, seconds per step, time budget per model."""
    if quick:
        return (1, 2), 3.0, 30.0
    return (1, 2, 4, 8, 16, 32, 64, 128), 12.0, 300.0


def _pair(base: Step | None, serv: Step, attr: str, scale: float) -> tuple[float, float]:
    b = getattr(base, attr) * scale if base else math.nan
    return b, getattr(serv, attr) * scale


async def run(ctx: Context) -> list[Row]:
    missing = missing_requirement("inline")
    if missing:
        ctx.log(f"skipped: {missing}")
        return []
    counts, seconds, budget = plan(ctx.quick)
    ctx.settings[NAME] = {"BOT_MODULE": BOT, **ctx.service_env}
    cores = os.cpu_count() or 1
    results: dict[str, list[Step]] = {}
    for model in (BASELINE_MODEL, *(m for m in MODELS if m != BASELINE_MODEL)):
        why = missing_requirement(model)
        if why:
            ctx.log(f"{model}: not available: {why}")
            continue
        # Quick mode does not wait for the pool's refill: its figures only show it runs.
        steps = await climb(
            model,
            BOT,
            counts,
            seconds,
            ctx.workdir,
            budget,
            ctx.service_env,
            ctx.log,
            wait_refill=not ctx.quick,
        )
        for s in steps:
            for error in s.errors:
                ctx.error(NAME, f"{model}, {s.sessions} session(s): {error}")
        results[model] = steps
    base_steps = {s.sessions: s for s in results.get(BASELINE_MODEL, [])}
    rows: list[Row] = []
    for model in (m for m in MODELS if m != BASELINE_MODEL):
        if model not in results:
            rows.append(Row(NAME, f"{model}: not available", "", None, None))
            continue
        steps = results[model]
        held = sessions_held(steps) / cores
        base_held = sessions_held(list(base_steps.values())) / cores
        rows.append(
            compared(
                NAME,
                f"{model}: sessions per core, lag p99 <= 20 ms (tried up to {steps[-1].sessions})",
                "",
                [(base_held, held)],
                digits=1,
            )
        )
        base_start = median(base_steps[1].starts) * 1e3 if 1 in base_steps else math.nan
        rows.append(
            compared(
                NAME,
                f"{model}: session start p50 (fresh: exec to first echo)",
                "ms",
                [(base_start, median(steps[0].starts) * 1e3)],
                digits=0,
            )
        )
        for s in steps:
            base = base_steps.get(s.sessions)
            label = f"{model}, {s.sessions} session{'s' if s.sessions > 1 else ''}"
            for metric, attr, unit, scale, digits in (
                ("loop lag p99", "lag_p99", "ms", 1e3, 1),
                ("echo p99", "echo_p99", "ms", 1e3, 0),
                ("CPU/session", "cpu_per_session", "%", 100.0, 1),
                ("RSS/session", "rss_per_session_mb", "MB", 1.0, 1),
            ):
                rows.append(
                    compared(
                        NAME,
                        f"{label}: {metric}",
                        unit,
                        [_pair(base, s, attr, scale)],
                        digits=digits,
                    )
                )
    return rows
