"""How many real-time voice sessions the service holds, per session model: the measurement
behind scenario 7 (bench/scenarios/sessions_per_core.py) and the capacity planner
(`python -m bench.capacity`).

One step runs N sessions of a bot at once, each fed 20 ms frames of 16 kHz audio in real time
by `bench/voice_client.py` (its own process), for a window of seconds, and reads:

- the server's event-loop lag p99: the difference of `botdock_event_loop_lag_seconds` (a
  histogram sampled every 0.1 s) over the window, quantile interpolated within its bucket as
  Prometheus' `histogram_quantile` does; merged over the servers for a fresh process per
  session;
- the frames' echo latency p50 and p99 (sent to echoed, matched by position in the audio);
- CPU per session: CPU seconds of the server processes and all their children over the
  window, divided by the window and N (1.0 is one core); the client's own CPU likewise (in
  `process` mode the window begins once the pool has started a worker for each one a session
  took, so the pool's imports are not counted);
- memory per session: resident memory (VmRSS) of the server processes and their children
  near the end of the window, divided by N;
- session start: from the WebSocket opening to the bot's first echoed audio (a fresh process:
  from its exec, through `/readyz` answering, to that echo).

A step holds when nothing failed, the lag p99 is at most 20 ms and the echo p99 is at most
20 ms above the one-session step's: the second test sees the lag of the loops that run the
pipelines in other processes, which the server's metric does not. A step that does not hold is
run once more (the machine may be busy with something else for a moment), and the second run
counts if it holds.

The models: `inline` (SESSION_ISOLATION=inline, every session on the server's loop),
`process` (SESSION_ISOLATION=process, PREWARM_WORKERS=N: each session in a prewarmed
worker), `fresh` (one `python -m app` with MAX_SESSIONS=1 started per session: Pipecat
Cloud's one session per process, its start paying the process's exec and imports).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import median, percentile
from bench.servers import SERVICE, Server

MODELS = ("inline", "process", "fresh")
LAG_LIMIT_SECS = 0.020
LAG_METRIC = "botdock_event_loop_lag_seconds"
REFILL_SECS_PER_WORKER = 8.0  # the most a worker's start may take while sessions run
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def missing_requirement(model: str) -> str | None:
    """Why `model` cannot be measured here, or None."""
    if importlib.util.find_spec("pipecat") is None:
        return "Pipecat is not installed (the `pipecat` group, in .venv-pipecat)"
    if model == "process":
        from app.config import Settings

        if "session_isolation" not in Settings.model_fields:
            return "this service has no SESSION_ISOLATION=process"
    return None


@dataclass
class Step:
    model: str
    sessions: int
    seconds: float
    lag_p99: float = math.nan  # seconds
    echo_p50: float = math.nan  # seconds
    echo_p99: float = math.nan
    cpu_per_session: float = math.nan  # cores
    rss_per_session_mb: float = math.nan
    idle_rss_mb: float = math.nan  # the server(s) before the sessions
    rss_mb: float = math.nan  # the server(s) with the N sessions
    client_cpu: float = math.nan  # cores
    starts: list[float] = field(default_factory=list)  # seconds
    errors: list[str] = field(default_factory=list)
    frames_missing: int = 0  # sent but never echoed: overload, not an error

    def holds(self, one_session_echo_p99: float, lag_only: bool = False) -> bool:
        if lag_only:
            return not self.errors and self.lag_p99 <= LAG_LIMIT_SECS
        return (
            not self.errors
            and not self.frames_missing
            and self.lag_p99 <= LAG_LIMIT_SECS
            and self.echo_p99 <= one_session_echo_p99 + LAG_LIMIT_SECS
        )

    def summary(self) -> str:
        return (
            f"{self.model} {self.sessions} session(s): lag p99 {self.lag_p99 * 1e3:.1f} ms, "
            f"echo p50/p99 {self.echo_p50 * 1e3:.0f}/{self.echo_p99 * 1e3:.0f} ms, "
            f"CPU/session {self.cpu_per_session * 100:.1f} %, "
            f"RSS/session {self.rss_per_session_mb:.1f} MB, "
            f"start p50 {median(self.starts) * 1e3:.0f} ms, "
            f"client CPU {self.client_cpu * 100:.0f} %"
            + (f", {self.frames_missing} frames not echoed" if self.frames_missing else "")
            + (f", errors: {'; '.join(self.errors[:3])}" if self.errors else "")
        )


# -- /proc ------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(pids: Sequence[int]) -> list[int]:
    tree = _children()
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += tree.get(pid, [])
    return out


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds of `pids`, their live descendants, and their reaped children."""
    total = 0
    for pid in process_tree(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / _CLK_TCK


def tree_rss_kb(pids: Sequence[int]) -> int:
    total = 0
    for pid in process_tree(pids):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE_KB
        except OSError:
            continue
    return total


# -- the lag histogram ------------------------------------------------------------------


def lag_buckets(metrics_text: str) -> dict[float, float]:
    """`le` -> cumulative count of the lag histogram."""
    out: dict[float, float] = {}
    prefix = LAG_METRIC + "_bucket{"
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            labels, value = line[len(prefix) :].split("}", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(value)
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' interpolation within the bucket holding quantile `q`."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


async def fetch_text(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return await resp.text()


async def lag_snapshot(servers: Sequence[Server]) -> dict[float, float]:
    total: dict[float, float] = {}
    for text in await asyncio.gather(*(fetch_text(f"{s.url}/metrics") for s in servers)):
        for le, count in lag_buckets(text).items():
            total[le] = total.get(le, 0.0) + count
    return total


# -- one step ---------------------------------------------------------------------------


def settings_for(model: str, bot: str, sessions: int, extra: dict[str, str]) -> dict[str, str]:
    base = {"BOT_MODULE": bot, **extra}
    if model == "fresh":
        return {**base, "MAX_SESSIONS": "1"}
    settings = {**base, "MAX_SESSIONS": str(max(sessions, 1))}
    if model == "process":
        settings |= {"SESSION_ISOLATION": "process", "PREWARM_WORKERS": str(sessions)}
    elif "session_isolation" in _settings_fields():
        settings["SESSION_ISOLATION"] = "inline"
    return settings


def _settings_fields() -> set[str]:
    from app.config import Settings

    return set(Settings.model_fields)


async def wait_workers(server: Server, wanted: int, timeout: float = 120.0) -> None:
    """Process mode: until `wanted` prewarmed workers are idle (`botdock_workers`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = await fetch_text(f"{server.url}/metrics")
        for line in text.splitlines():
            idle = line.startswith('botdock_workers{state="idle"}')
            if idle and float(line.split()[-1]) >= wanted:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{wanted} prewarmed worker(s) not idle after {timeout:.0f} s")


async def run_client(
    urls: list[str], seconds: float, stagger: float, go: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="botdock-voice-client-") as scratch:
        out_path = Path(scratch) / "result.json"
        spec = json.dumps(
            {
                "urls": urls,
                "seconds": seconds,
                "stagger": stagger,
                "out": str(out_path),
                "go": None if go is None else str(go),
            }
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.voice_client",
            spec,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"the client exited {proc.returncode}: {err.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out_path.read_text())
    return result


async def step(
    model: str,
    bot: str,
    sessions: int,
    seconds: float,
    workdir: Path,
    extra: dict[str, str] | None = None,
    wait_refill: bool = True,
) -> Step:
    """N sessions of `bot` under `model`, on fresh server process(es)."""
    result = Step(model, sessions, seconds)
    settings = settings_for(model, bot, sessions, extra or {})
    count = sessions if model == "fresh" else 1
    servers = [Server(SERVICE, workdir, settings) for _ in range(count)]
    ready: list[float] = []
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            ready.append(await asyncio.to_thread(server.wait_ready, 120.0))
        if model == "process":
            await wait_workers(servers[0], sessions)
        await asyncio.sleep(0.5)  # let start-up work settle before the idle figures
        pids = [s.pid for s in servers]
        result.idle_rss_mb = tree_rss_kb(pids) / 1024
        if model == "fresh":
            urls = [f"{s.ws_url}/ws" for s in servers]
        else:
            urls = [f"{servers[0].ws_url}/ws"] * sessions
        # Openings spread over a second (at most 0.1 s apart), as calls arrive.
        stagger = min(1.0, 0.1 * sessions)
        # Process mode: the pool starts a worker for each one a session took (it keeps
        # PREWARM_WORKERS idle), one at a time while sessions run. The sessions wait after
        # their start until the pool is full again (the `go` file), then feed: the window
        # holds the sessions' own CPU and latency, not the pool's imports (a paced output
        # would carry a delay those imports caused to the end of the feed).
        process = model == "process" and wait_refill
        go = workdir / f"go-{model}-{sessions}-{time.monotonic_ns()}" if process else None
        client_began = time.monotonic()
        client = asyncio.create_task(run_client(urls, seconds, stagger, go))
        await asyncio.sleep(stagger + 1.0)  # every session started and fed
        feed_began = client_began + stagger + 1.0
        if go is not None:
            await wait_workers(servers[0], sessions, timeout=REFILL_SECS_PER_WORKER * sessions)
            go.touch()
            feed_began = time.monotonic()
            await asyncio.sleep(1.0)
        lag0, cpu0, t0 = await lag_snapshot(servers), tree_cpu_seconds(pids), time.monotonic()
        feed_end = feed_began + seconds - 0.5
        window = max(1.0, min(seconds - 2.0, feed_end - time.monotonic()))
        await asyncio.sleep(window * 0.8)
        rss = tree_rss_kb(pids)
        await asyncio.sleep(window * 0.2)
        lag1, cpu1, t1 = await lag_snapshot(servers), tree_cpu_seconds(pids), time.monotonic()
        out = await client
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")
        for server in servers:
            if server.proc is not None and server.proc.poll() is not None:
                result.errors.append(
                    f"server exited {server.proc.returncode}: {server.log_tail(5)}"
                )
        return result
    finally:
        for server in servers:
            server.stop()
    diff = {le: lag1.get(le, 0.0) - lag0.get(le, 0.0) for le in lag1}
    result.lag_p99 = histogram_quantile(0.99, diff)
    result.cpu_per_session = (cpu1 - cpu0) / (t1 - t0) / sessions
    result.rss_mb = rss / 1024
    result.rss_per_session_mb = rss / 1024 / sessions
    client_secs = seconds + stagger + 0.1 * sessions  # its run: feed plus starts
    result.client_cpu = out["cpu_seconds"] / client_secs
    latencies: list[float] = []
    for i, session in enumerate(out["sessions"]):
        if session["error"]:
            result.errors.append(f"session {i}: {session['error']}")
            continue
        if session.get("frames_echoed", 0) < session.get("frames_sent", 0) - 5:
            result.errors.append(
                f"session {i}: {session['frames_echoed']} of {session['frames_sent']} frames echoed"
            )
        latencies += session["latencies"]
        if session["start"] is not None:
            start = session["start"] + (ready[i] if model == "fresh" else 0.0)
            result.starts.append(start)
    result.echo_p50 = percentile(latencies, 50)
    result.echo_p99 = percentile(latencies, 99)
    return result


async def climb(
    model: str,
    bot: str,
    counts: Sequence[int],
    seconds: float,
    workdir: Path,
    budget_secs: float,
    extra: dict[str, str] | None = None,
    log: Any = print,
    lag_only: bool = False,
    wait_refill: bool = True,
) -> list[Step]:
    """Steps of `counts` sessions in turn, until one does not hold, fails, or the next would
    pass `budget_secs`."""
    steps: list[Step] = []
    began = time.monotonic()
    for n in counts:
        if steps and time.monotonic() - began + seconds * 1.5 + 5 > budget_secs:
            log(f"{model}: stopping before {n} sessions (time budget)")
            break
        s = await step(model, bot, n, seconds, workdir, extra, wait_refill)
        log(s.summary())
        first = steps[0].echo_p99 if steps else s.echo_p99
        if not s.errors and not s.holds(first, lag_only):
            # Once more: on a shared machine one step can land on someone else's burst.
            again = await step(model, bot, n, seconds, workdir, extra, wait_refill)
            log(f"once more: {again.summary()}")
            if again.errors or again.holds(first, lag_only):
                s = again
        steps.append(s)
        if s.errors or not s.holds(steps[0].echo_p99, lag_only):
            break
    return steps


def sessions_held(steps: Sequence[Step]) -> int:
    """The largest step that held (0 if none did)."""
    if not steps:
        return 0
    first = steps[0].echo_p99
    held = [s.sessions for s in steps if s.holds(first)]
    return max(held, default=0)
