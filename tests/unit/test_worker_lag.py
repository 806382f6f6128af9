"""A worker's `lag` report (app/workers/pool.py `record_lag`): only finite numbers count (the
worker runs the bot's code), and they feed the worker's figures and the histogram."""

from __future__ import annotations

import time
from typing import Any, cast

from app.metrics import SessionMetrics, WorkerMetrics
from app.workers.pool import Worker, WorkerPool
from tests.metrics import parse, value


def pool_and_worker() -> tuple[WorkerPool, Worker, SessionMetrics]:
    metrics = SessionMetrics()
    pool = WorkerPool(
        "tests.bots.echo",
        prewarm=0,
        max_sessions_per_worker=1,
        max_rss_mb=None,
        log_level="INFO",
        log_format="text",
        metrics=WorkerMetrics(metrics),
    )
    return pool, Worker(cast(Any, None), cast(Any, None)), metrics


def test_only_finite_numbers_are_recorded() -> None:
    pool, worker, metrics = pool_and_worker()
    pool.record_lag(worker, ["x", True, None, float("nan"), float("inf"), -1, 1.25, 0.01])
    assert worker.lag_secs == 0.01
    assert worker.max_lag_secs(time.monotonic()) == 1.25
    samples = parse(metrics.render().decode())
    assert value(samples, "botdock_worker_event_loop_lag_seconds_count") == 3
    assert value(samples, "botdock_worker_event_loop_lag_seconds_bucket", le="1.0") == 2


def test_a_report_that_is_not_a_list_of_numbers_changes_nothing() -> None:
    pool, worker, metrics = pool_and_worker()
    for report in (None, "1.5", {"lag": 1.5}, 2.0, [], ["1.5"]):
        pool.record_lag(worker, report)
    assert worker.lag_secs == 0.0
    assert worker.max_lag_secs(time.monotonic()) == 0.0
    samples = parse(metrics.render().decode())
    assert value(samples, "botdock_worker_event_loop_lag_seconds_count") == 0


def test_a_sample_leaves_the_window() -> None:
    pool, worker, _ = pool_and_worker()
    pool.record_lag(worker, [2.0])
    assert worker.max_lag_secs(time.monotonic() + 10) == 0.0
    assert worker.lag_secs == 2.0  # the latest stays the latest
