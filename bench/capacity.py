"""`python -m bench.capacity [--bot MODULE] [--max-sessions N] [--isolation MODEL] ...`:
how many sessions of your own bot one core holds, and the `MAX_SESSIONS`, container CPU and
memory to give it.

It runs the measurement of the benchmarks' scenario 7 (bench/voice_load.py) on `--bot`: N
sessions at once on `/ws`, each fed 20 ms frames of 16 kHz 16-bit mono audio in real time in
Pipecat's protobuf serialization, N doubling from 1 until the server's event-loop lag p99
passes 20 ms (or the frames' echo latency p99 rises 20 ms above one session's), a session
fails, or `--max-sessions` is reached. The bot must serve Pipecat's `FastAPIWebsocketTransport`
with `ProtobufFrameSerializer` and answer audio with audio (an echo, or speech); a bot whose
answers do not follow the audio in length (speech to an LLM to speech) is judged on the lag
alone with `--lag-only`. Run it on the machine class you deploy to, with nothing else busy:
the load generator shares its cores and its own CPU is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.report import median
from bench.voice_load import LAG_LIMIT_SECS, Step, climb, missing_requirement

HEADROOM = 0.8  # MAX_SESSIONS uses this share of the measured capacity
MEMORY_MARGIN = 1.25


def counts_up_to(limit: int) -> list[int]:
    counts, n = [], 1
    while n < limit:
        counts.append(n)
        n *= 2
    return [*counts, limit]


def held(steps: list[Step], lag_only: bool) -> list[Step]:
    first = steps[0].echo_p99 if steps else math.nan
    out = []
    for s in steps:
        if not s.holds(first, lag_only):
            break
        out.append(s)
    return out


def recommend(steps: list[Step], ok: list[Step], cpus: float, tried_max: int) -> str:
    cores = os.cpu_count() or 1
    lines = ["", "steps:"]
    for s in steps:
        lines.append(f"  {s.summary()}")
    if not ok:
        return "\n".join(
            [*lines, "", "not even one session kept the lag under 20 ms: see the steps above."]
        )
    top = ok[-1]
    per_core = top.sessions / cores
    per_session_cpu = top.cpu_per_session
    # Memory: a line through the two largest steps that held (total RSS against N).
    if len(ok) >= 2:
        a, b = ok[-2], ok[-1]
        slope = (b.rss_mb - a.rss_mb) / (b.sessions - a.sessions)
    else:
        slope = top.rss_mb - top.idle_rss_mb
    base = top.rss_mb - slope * top.sessions
    max_sessions = max(1, math.floor(per_core * cpus * HEADROOM))
    memory = (base + slope * max_sessions) * MEMORY_MARGIN
    memory_mib = int(math.ceil(memory / 64) * 64)
    if top.sessions >= tried_max:
        limit_note = (
            f"every step up to --max-sessions {tried_max} held: the limit is higher; raise "
            "--max-sessions to find it"
        )
    elif top is steps[-1]:
        limit_note = "the time budget ended before a step failed: raise --budget to find it"
    else:
        limit_note = f"{steps[-1].sessions} sessions did not hold"
    lines += [
        "",
        "measured:",
        f"  held {top.sessions} session(s) on {cores} core(s) with loop lag p99 "
        f"{top.lag_p99 * 1e3:.1f} ms (limit {LAG_LIMIT_SECS * 1e3:.0f} ms); {limit_note}",
        f"  => {per_core:.1f} session(s) per core "
        f"(the load generator used {top.client_cpu * 100:.0f} % of a core of this machine too)",
        f"  CPU per session {per_session_cpu * 100:.1f} % of a core; memory {base:.0f} MB "
        f"for the service plus {slope:.1f} MB per session (RSS of the server and its children)",
        f"  CPU alone would allow about {HEADROOM / per_session_cpu:.0f} session(s) per core "
        f"at {HEADROOM:.0%} of a core (a projection, not measured)",
        f"  session start p50 {median(top.starts) * 1e3:.0f} ms (WebSocket open to first audio)",
        "",
        f"recommended for a container of {cpus:g} CPU ({HEADROOM:.0%} of the measured capacity):",
        f"  MAX_SESSIONS={max_sessions}",
        f"  CPU: {cpus:g} (request and limit)",
        f"  memory: {memory_mib} MiB ({base:.0f} MB + {max_sessions} x {slope:.1f} MB, "
        f"x{MEMORY_MARGIN})",
        "",
        "Re-measure on the machine class you deploy to, with nothing else running on it.",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace, workdir: Path) -> str:
    extra = dict(item.split("=", 1) for item in args.setting)
    steps = await climb(
        args.isolation,
        args.bot,
        counts_up_to(args.max_sessions),
        args.seconds,
        workdir,
        args.budget,
        extra,
        lag_only=args.lag_only,
    )
    return recommend(steps, held(steps, args.lag_only), args.cpus, args.max_sessions)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--bot", default="examples.rtvi_echo_bot", help="BOT_MODULE to measure")
    parser.add_argument("--max-sessions", type=int, default=64, help="largest N tried")
    parser.add_argument(
        "--isolation", choices=("inline", "process", "fresh"), default="inline",
        help="session model: SESSION_ISOLATION=inline or process, or one process per session",
    )  # fmt: skip
    parser.add_argument("--cpus", type=float, default=1.0, help="the container's CPUs")
    parser.add_argument("--seconds", type=float, default=12.0, help="each step's length")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for all steps")
    parser.add_argument("--lag-only", action="store_true", help="judge on the loop lag alone")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE",
        help="a setting or variable for the service and your bot (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    if any("=" not in item for item in args.setting):
        parser.error("--setting takes NAME=VALUE")
    if args.max_sessions < 1:
        parser.error("--max-sessions must be at least 1")
    why = missing_requirement(args.isolation)
    if why:
        print(f"cannot measure {args.isolation}: {why}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="botdock-capacity-"))
    print(
        f"measuring {args.bot} ({args.isolation}), N = {counts_up_to(args.max_sessions)}, "
        f"{args.seconds:g} s each; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        print(asyncio.run(run(args, workdir)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
