"""Event-loop health: how late the server's event loop runs what is due (its lag), measured
all the time, and a warning that names the session whose code holds the loop.

Every session runs on the one loop, so a bot that blocks it (`time.sleep`, a CPU-bound
step, a synchronous HTTP call in an `async def`) stalls every other session and the probes.
Three parts:

- a tick task sleeps `TICK_SECS` and records how much later than asked it woke: the lag;
- a watchdog thread notices a tick that is overdue by `warn_secs` while the loop is still
  stuck, and logs which task holds the loop, the session that task belongs to (tasks are
  attributed to the session they were created in, by a task factory) and the line it is on;
- `lag_secs()` and `max_lag_secs()` (over the last `WINDOW_SECS`) for `/health`, `/readyz`
  and `/metrics`; an overdue tick counts as lag before it wakes, so a probe that runs right
  after a stall sees it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Coroutine, Generator
from contextlib import nullcontext
from contextvars import Context
from typing import Any, Protocol

from loguru import logger

from app.logs import SessionLogContext, current_session_id

TICK_SECS = 0.1
WINDOW_SECS = 5.0

_log = logger.bind(logger_name=__name__)

# asyncio's record of the task each loop is running (what `asyncio.current_task` reads);
# a dict, readable from the watchdog thread, where `current_task(loop)` is not meant to be.
_CURRENT_TASKS: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = vars(asyncio.tasks)[
    "_current_tasks"
]


class LagObserver(Protocol):
    """Where each tick's lag goes: `app.metrics.LoopMetrics` on the server, the lag report
    in a worker (`app.workers.worker`)."""

    def observe(self, lag_secs: float) -> None: ...


class LoopMonitor:
    """Start with `start()` inside the loop to watch; `stop()` before the loop closes."""

    def __init__(self, warn_secs: float, metrics: LagObserver | None = None) -> None:
        self.warn_secs = warn_secs
        self._metrics = metrics
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(WINDOW_SECS / TICK_SECS))
        self._last_lag = 0.0
        self._due = 0.0  # when the tick in progress should wake (monotonic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tick: asyncio.Task[None] | None = None
        self._watchdog: threading.Thread | None = None
        self._stopped = threading.Event()
        self._owners: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = (
            weakref.WeakKeyDictionary()
        )
        self._previous_factory: Any = None
        self._stall_owner: str | None = None  # the session named by the watchdog

    # -- figures -----------------------------------------------------------------------

    def lag_secs(self) -> float:
        """The loop's lag now: the last tick's, or how overdue the current tick is."""
        return max(self._last_lag, self._overdue(time.monotonic()))

    def max_lag_secs(self) -> float:
        """The largest lag of the last `WINDOW_SECS`, the current overdue tick included."""
        now = time.monotonic()
        since = now - WINDOW_SECS
        recent = (lag for at, lag in self._samples if at >= since)
        return max(self._overdue(now), max(recent, default=0.0))

    def _overdue(self, now: float) -> float:
        return max(0.0, now - self._due) if self._due else 0.0

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._previous_factory = loop.get_task_factory()
        loop.set_task_factory(self._task_factory)
        self._due = time.monotonic() + TICK_SECS
        # The monitor belongs to no session, whatever context the lifespan runs in.
        self._tick = loop.create_task(self._ticks(), name="loop-monitor", context=Context())
        self._watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._watchdog.start()

    async def stop(self) -> None:
        self._stopped.set()
        if self._tick is not None:
            self._tick.cancel()
            await asyncio.gather(self._tick, return_exceptions=True)
        if self._loop is not None and self._loop.get_task_factory() == self._task_factory:
            self._loop.set_task_factory(self._previous_factory)
        if self._watchdog is not None:
            self._watchdog.join(timeout=1)

    # -- the loop side ---------------------------------------------------------------------

    def _task_factory(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        """Create the task as asyncio would, noting the session it was created in (tasks
        inherit their creator's context, so a pipeline's tasks belong to its session)."""
        task: asyncio.Task[Any]
        if self._previous_factory is not None:
            task = self._previous_factory(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        session_id = context.run(current_session_id) if context else current_session_id()
        if session_id is not None:
            self._owners[task] = session_id
        return task

    async def _ticks(self) -> None:
        while True:
            self._due = time.monotonic() + TICK_SECS
            await asyncio.sleep(TICK_SECS)
            now = time.monotonic()
            lag = max(0.0, now - self._due)
            self._due = now + TICK_SECS  # the next tick's, until the loop sets it
            self._last_lag = lag
            self._samples.append((now, lag))
            if self._metrics is not None:
                self._metrics.observe(lag)
            if lag >= self.warn_secs:
                owner, self._stall_owner = self._stall_owner, None
                with SessionLogContext(owner) if owner else nullcontext():
                    _log.warning(
                        "event loop was blocked for {:.2f}s{}",
                        lag,
                        f" by session {owner}" if owner else "",
                    )

    # -- the watchdog thread -----------------------------------------------------------------

    def _watch(self) -> None:
        warned_due = 0.0
        while not self._stopped.wait(min(TICK_SECS, self.warn_secs / 2)):
            due = self._due
            overdue = time.monotonic() - due
            if overdue < self.warn_secs or due == warned_due:
                continue
            warned_due = due
            self._warn_stalled(overdue)

    def _warn_stalled(self, overdue: float) -> None:
        """Name what holds the loop: its task, that task's session, and the line it is on."""
        loop, thread_id = self._loop, self._loop_thread
        task = _CURRENT_TASKS.get(loop) if loop else None
        owner = self._owners.get(task) if task is not None else None
        self._stall_owner = owner
        frame = sys._current_frames().get(thread_id) if thread_id else None
        where = "unknown"
        if frame is not None:
            where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        name = task.get_name() if task is not None else "no task"
        with SessionLogContext(owner) if owner else nullcontext():
            _log.warning(
                "event loop blocked for {:.2f}s so far by {} (task {!r}, at {}): async code "
                "must not block; await, or move the work to a thread",
                overdue,
                f"session {owner}" if owner else "code outside any session",
                name,
                where,
            )
