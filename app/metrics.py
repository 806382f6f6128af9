"""Prometheus metrics for sessions, in a registry of the app's own (so several apps in one
process, as in tests, never share counters)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20,
    float("inf"),
)  # fmt: skip


class SessionMetrics:
    """Counters behind `/metrics`; the session manager is their only writer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.started = Counter(
            "botdock_sessions_started",
            "Sessions whose bot was started (or WebSocket session announced).",
            ["kind"],
            registry=self.registry,
        )
        self.active = Gauge(
            "botdock_sessions_active", "Sessions running now.", ["kind"], registry=self.registry
        )
        self.finished = Counter(
            "botdock_sessions_finished",
            "Sessions ended, by final state: completed, failed, timed_out, cancelled.",
            ["kind", "state"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "botdock_sessions_rejected",
            "Session starts refused: capacity, draining, duplicate_id, unauthorized.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "botdock_session_duration_seconds",
            "Session duration from start to final state.",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.start_latency = Histogram(
            "botdock_session_start_latency_seconds",
            "From the session's slot being reserved to bot() being called.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"),
)  # fmt: skip


class LoopMetrics:
    """The event loop's lag, written by the loop monitor (app/loop_monitor.py) only."""

    def __init__(self, metrics: SessionMetrics) -> None:
        self._lag = Histogram(
            "botdock_event_loop_lag_seconds",
            "How late the server's event loop woke for a timer, sampled every 0.1 s.",
            buckets=LAG_BUCKETS,
            registry=metrics.registry,
        )

    def observe(self, lag_secs: float) -> None:
        self._lag.observe(lag_secs)


class KindMetrics:
    """One session kind's series, looked up once: `labels()` hashes its arguments and takes
    the metric's lock on every call, six times per session (docs/benchmarks.md)."""

    def __init__(self, metrics: SessionMetrics, kind: str, final_states: Iterable[str]) -> None:
        self._metrics = metrics
        self._kind = kind
        # The counters and the gauge exist from the start, so /metrics shows them at 0.
        self.started = metrics.started.labels(kind)
        self.active = metrics.active.labels(kind)
        self.finished = {state: metrics.finished.labels(kind, state) for state in final_states}
        # A histogram appears with its first observation, not before.
        self._duration: Histogram | None = None
        self._start_latency: Histogram | None = None

    def observe_duration(self, secs: float) -> None:
        if self._duration is None:
            self._duration = self._metrics.duration.labels(self._kind)
        self._duration.observe(secs)

    def observe_start_latency(self, secs: float) -> None:
        if self._start_latency is None:
            self._start_latency = self._metrics.start_latency.labels(self._kind)
        self._start_latency.observe(secs)


CPU_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf"))
RSS_BUCKETS = (
    *(mb * 1024 * 1024 for mb in (32, 64, 128, 256, 512, 1024, 2048, 4096)),
    float("inf"),
)
START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf"))


class WorkerMetrics:
    """Worker processes (SESSION_ISOLATION=process), written by the pool only
    (app/workers/pool.py)."""

    def __init__(self, metrics: SessionMetrics) -> None:
        registry = metrics.registry
        self.workers = Gauge(
            "botdock_workers", "Worker processes, by state: idle, busy.", ["state"],
            registry=registry,
        )  # fmt: skip
        self.retired = Counter(
            "botdock_workers_retired",
            "Workers replaced, by reason: max_sessions, max_rss, unclean (a thread or task "
            "of the session left running), killed (memory limit, stop grace), died, closing.",
            ["reason"],
            registry=registry,
        )
        self.start_time = Histogram(
            "botdock_worker_start_seconds",
            "From starting a worker process to its bot module imported (prewarm cost).",
            buckets=START_BUCKETS,
            registry=registry,
        )
        self.session_cpu = Histogram(
            "botdock_session_cpu_seconds",
            "CPU seconds a session's worker used during the session.",
            buckets=CPU_BUCKETS,
            registry=registry,
        )
        self.session_rss = Histogram(
            "botdock_session_rss_bytes",
            "A session's worker's resident memory when the session ended.",
            buckets=RSS_BUCKETS,
            registry=registry,
        )
        self.loop_lag = Histogram(
            "botdock_worker_event_loop_lag_seconds",
            "How late a worker's event loop woke for a timer, sampled every 0.1 s while the "
            "worker runs a session, all workers together.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        for state in ("idle", "busy"):
            self.workers.labels(state).set(0)

    def observe_session(self, cpu_secs: float, rss_bytes: int) -> None:
        self.session_cpu.observe(max(0.0, cpu_secs))
        if rss_bytes:
            self.session_rss.observe(rss_bytes)
