"""The worker pool: processes started ahead of need (`PREWARM_WORKERS`), one session each at a
time, replaced after `WORKER_MAX_SESSIONS` sessions, above `WORKER_MAX_RSS_MB`, when a session
left a thread running, or when one dies. It knows nothing of sessions' states: the runner
(`app.workers.runner`) asks for a worker, runs a session in it and gives it back.

Each worker's event-loop lag, as the worker reports it (`lag` messages, read by the runner),
is kept here: the latest and the largest of the last `WINDOW_SECS`, for `/health`,
`/sessions/{id}` and `/metrics`.

Workers are plain child processes (`subprocess.Popen`, so any event loop, uvloop included,
can serve), each connected by a socketpair. Their memory and CPU are read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from app.loop_monitor import WINDOW_SECS
from app.metrics import WorkerMetrics
from app.workers.protocol import Channel, ChannelClosed

_log = logger.bind(logger_name="app.workers.pool")
START_TIMEOUT_SECS = 120.0  # a bot module's imports (Pipecat, models) may take long
EXIT_WAIT_SECS = 2.0  # how long a worker told to exit may take before it is killed
RSS_CHECK_SECS = 0.25
TOP_UPS_AT_ONCE = 1  # spares started at a time while sessions run (`WorkerPool._refill`)
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


MAX_LAG_SAMPLES = 256  # kept per worker: a window's ticks, with room to spare


class WorkerStartError(Exception):
    """A worker process could not be started; the message says why."""


@dataclass(eq=False)
class Worker:
    proc: subprocess.Popen[bytes]
    channel: Channel
    sessions: int = 0
    session_id: str | None = None
    cpu_at_start: float = 0.0
    kill_reason: str | None = None  # why the pool killed it, for the session's reason
    returncode: int | None = field(default=None)
    lag_secs: float = 0.0  # the worker's loop lag in its last sample
    lags: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_LAG_SAMPLES))

    def max_lag_secs(self, now: float) -> float:
        """The largest lag the worker reported in the last `WINDOW_SECS` (server's clock)."""
        since = now - WINDOW_SECS
        return max((lag for at, lag in self.lags if at >= since), default=0.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        try:
            fields = Path(f"/proc/{self.pid}/statm").read_text().split()
        except OSError:
            return 0
        return int(fields[1]) * _PAGE

    def cpu_secs(self) -> float:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime

    def kill(self, reason: str | None = None) -> None:
        if reason and self.kill_reason is None:
            self.kill_reason = reason
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    async def wait_exit(self, kill_after: float = EXIT_WAIT_SECS) -> int:
        """Its exit status (reaped, so no zombie is left), killing it after `kill_after`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + kill_after
        while (code := self.proc.poll()) is None:
            if loop.time() >= deadline:
                self.kill()
                deadline = loop.time() + kill_after
            await asyncio.sleep(0.005)
        self.returncode = code
        self.channel.close()
        return code

    def death_reason(self) -> str:
        if self.kill_reason:
            return self.kill_reason
        code = self.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the worker process was killed by {name}"
        return f"the worker process exited with code {code}"


class WorkerPool:
    def __init__(
        self,
        bot_module: str,
        *,
        prewarm: int,
        max_sessions_per_worker: int,
        max_rss_mb: int | None,
        log_level: str,
        log_format: str,
        loop_lag_warn_secs: float = 0.25,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._bot_module = bot_module
        self._prewarm = prewarm
        self._max_sessions = max_sessions_per_worker
        self._max_rss = None if max_rss_mb is None else max_rss_mb * 1024 * 1024
        self.max_rss_mb = max_rss_mb
        self._log_level = log_level
        self._log_format = log_format
        self._warn_secs = loop_lag_warn_secs
        self._metrics = metrics
        self._idle: list[Worker] = []
        self._busy: dict[str, Worker] = {}
        self._starting: set[asyncio.Task[Worker]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._waiting = 0  # sessions waiting for a worker to start
        self._watch: asyncio.Task[None] | None = None
        self._warm = prewarm == 0  # a worker has said hello (or none is to be prewarmed)
        self._start_error: str | None = None  # why the last prewarmed start failed

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the prewarmed workers (in the background) and the watch over them."""
        self._refill()
        self._watch = asyncio.create_task(self._watch_workers(), name="worker-watch")

    async def close(self) -> None:
        """Tell idle workers to exit, wait for them (killing any that lingers), and for any
        still starting."""
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, *self._background, return_exceptions=True)
        workers = [*self._idle, *self._busy.values()]
        self._idle.clear()
        for worker in workers:
            with contextlib.suppress(ChannelClosed):
                worker.channel.write({"t": "exit"})
        await asyncio.gather(*(w.wait_exit() for w in workers), return_exceptions=True)

    # -- sessions ----------------------------------------------------------------------------

    async def acquire(self, session_id: str) -> Worker:
        """A ready worker for a session: an idle one, or the first of those starting (one more
        is started for each session waiting). A session cancelled while it waits leaves the
        start running: that worker joins the idle ones."""
        self._waiting += 1
        try:
            while (worker := self._take_idle()) is None:
                if self._closed:
                    raise WorkerStartError("the service is shutting down")
                self._refill()
                done, _ = await asyncio.wait(
                    set(self._starting), return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise WorkerStartError(str(task.exception()))
        finally:
            self._waiting -= 1
        worker.session_id = session_id
        worker.sessions += 1
        worker.cpu_at_start = worker.cpu_secs()
        self._busy[session_id] = worker
        self._refill()
        self._count()
        return worker

    def _take_idle(self) -> Worker | None:
        while self._idle:
            candidate = self._idle.pop()
            if candidate.proc.poll() is None:
                return candidate
            self._retire(candidate, "died")
        return None

    def release(self, worker: Worker, *, clean: bool) -> None:
        """Give a worker back after its session: kept for the next one, or replaced."""
        if worker.session_id is not None and self._busy.get(worker.session_id) is worker:
            del self._busy[worker.session_id]
        if self._metrics is not None:
            self._metrics.observe_session(
                worker.cpu_secs() - worker.cpu_at_start, worker.rss_bytes()
            )
        worker.session_id = None
        reason = None
        if worker.proc.poll() is not None or worker.returncode is not None:
            reason = "killed" if worker.kill_reason else "died"
        elif not clean:
            reason = "unclean"
        elif worker.sessions >= self._max_sessions:
            reason = "max_sessions"
        elif self._max_rss is not None and worker.rss_bytes() > self._max_rss:
            reason = "max_rss"
        if reason is None and not self._closed:
            self._idle.append(worker)
        else:
            self._retire(worker, reason or "closing")
        self._refill()
        self._count()

    def figures(self, session_id: str) -> dict[str, float] | None:
        """The worker running `session_id`: its pid, memory now, CPU used by the session and
        its loop's lag in its last report."""
        worker = self._busy.get(session_id)
        if worker is None:
            return None
        return {
            "pid": worker.pid,
            "rss_bytes": worker.rss_bytes(),
            "cpu_secs": round(worker.cpu_secs() - worker.cpu_at_start, 3),
            "loop_lag_secs": round(worker.lag_secs, 4),
        }

    def record_lag(self, worker: Worker, samples: Any) -> None:
        """A worker's `lag` report: its loop's lag samples since its last one. Only numbers
        are taken (the worker runs the bot's code); the server's clock stamps them."""
        if not isinstance(samples, list):
            return
        lags = [
            max(0.0, float(lag))
            for lag in samples[:MAX_LAG_SAMPLES]
            if isinstance(lag, int | float) and not isinstance(lag, bool) and math.isfinite(lag)
        ]
        if not lags:
            return
        now = time.monotonic()
        worker.lag_secs = lags[-1]
        worker.lags.extend((now, lag) for lag in lags)
        if self._metrics is not None:
            for lag in lags:
                self._metrics.loop_lag.observe(lag)

    def max_lag_secs(self) -> float:
        """The largest loop lag any live worker reported in the last `WINDOW_SECS`."""
        now = time.monotonic()
        live = [*self._idle, *self._busy.values()]
        return max((worker.max_lag_secs(now) for worker in live), default=0.0)

    def not_ready(self) -> str | None:
        """Why the service should not take sessions yet (for `/readyz`): no worker has been
        ready so far, because they are still importing the bot, or because they cannot."""
        if self._warm:
            return None
        if self._start_error is not None:
            return f"no worker process could be started: {self._start_error}"
        return f"worker processes are starting (PREWARM_WORKERS={self._prewarm})"

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def busy_count(self) -> int:
        return len(self._busy)

    # -- inside ------------------------------------------------------------------------------

    def _retire(self, worker: Worker, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.retired.labels(reason).inc()
        with contextlib.suppress(ChannelClosed):
            worker.channel.write({"t": "exit"})
        self._in_background(worker.wait_exit())

    def _refill(self) -> None:
        """Start workers: one for each session waiting for one, at once; and the spares
        missing from `PREWARM_WORKERS`, all together while no session runs, else one at a
        time. A bot module's imports take a core for a second or more (Pipecat's: 1.5 s here),
        and a burst of them beside running sessions would take the cores those sessions'
        real-time audio needs: a paced output never wins back audio it fell behind on."""
        if self._closed:
            return
        idle, waiting = len(self._idle), self._waiting  # a waiting session takes an idle one
        for_sessions = max(0, waiting - idle)
        missing = max(0, self._prewarm - max(0, idle - waiting))
        spares = missing if not self._busy else min(missing, TOP_UPS_AT_ONCE)
        while len(self._starting) < for_sessions + spares:
            task = asyncio.get_running_loop().create_task(self._spawn(), name="worker-start")
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Worker]) -> None:
        self._starting.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            self._start_error = str(task.exception())
            _log.error("a worker did not start: {}", task.exception())
            return  # started again for the next session, not in a loop
        worker = task.result()
        if self._closed:
            self._retire(worker, "closing")
        else:
            self._idle.append(worker)
            self._refill()  # the next spare, when they are started one at a time
            self._count()

    async def _spawn(self) -> Worker:
        ours, theirs = socket.socketpair()
        try:
            # Popen, not asyncio's subprocess API: any loop (uvloop too) serves it, and
            # fork+exec of a small command takes about a millisecond.
            proc = subprocess.Popen(  # noqa: ASYNC220
                [
                    sys.executable,
                    "-m",
                    "app.workers.worker",
                    "--fd",
                    str(theirs.fileno()),
                    "--bot",
                    self._bot_module,
                    "--log-level",
                    self._log_level,
                    "--log-format",
                    self._log_format,
                    "--loop-lag-warn-secs",
                    str(self._warn_secs),
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise WorkerStartError(f"cannot start a worker process: {exc}") from None
        finally:
            theirs.close()
        worker = Worker(proc, await Channel.open(ours))
        started = time.monotonic()
        try:
            async with asyncio.timeout(START_TIMEOUT_SECS):
                message, _ = await worker.channel.recv()
        except (ChannelClosed, TimeoutError, asyncio.CancelledError) as exc:
            worker.kill()
            code = await worker.wait_exit()
            if isinstance(exc, asyncio.CancelledError):
                raise
            why = (
                "did not say hello in time" if isinstance(exc, TimeoutError) else f"exited ({code})"
            )
            raise WorkerStartError(f"the worker process {why}; see its log lines above") from None
        if message.get("t") != "hello":
            worker.kill()
            await worker.wait_exit()
            raise WorkerStartError(f"the worker process said {message.get('t')!r}, not hello")
        self._warm = True
        self._start_error = None
        if self._metrics is not None:
            self._metrics.start_time.observe(time.monotonic() - started)
        if self._max_rss is not None and worker.rss_bytes() > self._max_rss:
            _log.warning(
                "a worker uses {} MB before any session, above WORKER_MAX_RSS_MB ({} MB): "
                "every session will be ended for memory; raise the limit",
                worker.rss_bytes() // (1024 * 1024),
                self.max_rss_mb,
            )
        return worker

    async def _watch_workers(self) -> None:
        """Replace an idle worker that died (killed by the kernel, say) before a session gets
        it; kill a busy one whose memory passes the limit (its session fails with a reason
        naming the limit)."""
        while True:
            await asyncio.sleep(RSS_CHECK_SECS)
            dead = [worker for worker in self._idle if worker.proc.poll() is not None]
            for worker in dead:
                self._idle.remove(worker)
                self._retire(worker, "died")
            if dead:
                self._refill()
                self._count()
            if self._max_rss is None:
                continue
            for worker in list(self._busy.values()):
                rss = worker.rss_bytes()
                if rss > self._max_rss and worker.kill_reason is None:
                    worker.kill(
                        f"the worker's memory ({rss // (1024 * 1024)} MB) went above "
                        f"WORKER_MAX_RSS_MB ({self.max_rss_mb} MB)"
                    )

    def _in_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _count(self) -> None:
        if self._metrics is not None:
            self._metrics.workers.labels("idle").set(len(self._idle))
            self._metrics.workers.labels("busy").set(len(self._busy))
