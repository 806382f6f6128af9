"""The arithmetic of the sessions-per-core bench and the capacity planner (bench/voice_load.py,
bench/capacity.py): reading the lag histogram, its quantile, and the recommendation."""

from __future__ import annotations

import math

from bench.capacity import counts_up_to, held, recommend
from bench.voice_load import Step, histogram_quantile, lag_buckets

METRICS = """# HELP botdock_event_loop_lag_seconds How late the server's event loop woke.
# TYPE botdock_event_loop_lag_seconds histogram
botdock_event_loop_lag_seconds_bucket{le="0.001"} 50.0
botdock_event_loop_lag_seconds_bucket{le="0.01"} 90.0
botdock_event_loop_lag_seconds_bucket{le="0.02"} 98.0
botdock_event_loop_lag_seconds_bucket{le="0.05"} 100.0
botdock_event_loop_lag_seconds_bucket{le="+Inf"} 100.0
botdock_event_loop_lag_seconds_count 100.0
botdock_sessions_active{kind="websocket"} 3.0
"""


def test_lag_buckets_reads_the_cumulative_counts_of_the_lag_histogram_only() -> None:
    assert lag_buckets(METRICS) == {
        0.001: 50.0,
        0.01: 90.0,
        0.02: 98.0,
        0.05: 100.0,
        math.inf: 100.0,
    }


def test_quantile_is_interpolated_within_its_bucket() -> None:
    buckets = lag_buckets(METRICS)
    # rank 99 of 100 lies halfway through the (0.02, 0.05] bucket's two samples
    assert math.isclose(histogram_quantile(0.99, buckets), 0.035)
    # rank 50 is the last sample of the first bucket
    assert math.isclose(histogram_quantile(0.5, buckets), 0.001)


def test_quantile_of_an_empty_window_is_unknown_and_the_inf_bucket_gives_its_lower_bound() -> None:
    assert math.isnan(histogram_quantile(0.99, {0.01: 0.0, math.inf: 0.0}))
    assert histogram_quantile(0.99, {0.01: 1.0, math.inf: 10.0}) == 0.01


def test_counts_double_up_to_the_limit_which_is_always_tried() -> None:
    assert counts_up_to(1) == [1]
    assert counts_up_to(8) == [1, 2, 4, 8]
    assert counts_up_to(12) == [1, 2, 4, 8, 12]


def step(n: int, lag_ms: float, echo_ms: float, rss_mb: float) -> Step:
    s = Step("inline", n, 10.0, lag_p99=lag_ms / 1e3, echo_p99=echo_ms / 1e3)
    s.cpu_per_session, s.rss_mb, s.idle_rss_mb, s.client_cpu = 0.05, rss_mb, 90.0, 0.02
    s.rss_per_session_mb, s.starts = rss_mb / n, [0.06]
    return s


def test_a_step_stops_holding_on_lag_or_echo_and_lag_only_ignores_the_echo() -> None:
    steps = [step(1, 1, 100, 100), step(2, 5, 130, 110), step(4, 30, 100, 130)]
    assert [s.sessions for s in held(steps, lag_only=False)] == [1]
    assert [s.sessions for s in held(steps, lag_only=True)] == [1, 2]
    steps[1].errors.append("session 0: closed")
    assert [s.sessions for s in held(steps, lag_only=True)] == [1]


def test_recommendation_from_the_largest_step_that_held() -> None:
    import os

    cores = os.cpu_count() or 1
    steps = [step(1, 1, 100, 100), step(2 * cores, 2, 100, 100 + 10 * (2 * cores - 1))]
    text = recommend(steps, held(steps, False), cpus=1.0, tried_max=64)
    # 2 sessions per core held; 80 % of it on one CPU
    assert "MAX_SESSIONS=1" in text
    assert "plus 10.0 MB per session" in text
    # (90 MB + 1 x 10 MB) x 1.25 = 125 MB, rounded up to 128 MiB
    assert "memory: 128 MiB" in text
    assert "the time budget ended before a step failed" in text
    steps.append(step(4 * cores, 50, 100, 500))
    assert f"{4 * cores} sessions did not hold" in recommend(steps, held(steps, False), 1.0, 64)


def test_recommendation_says_when_nothing_held() -> None:
    steps = [step(1, 40, 100, 100)]
    assert "not even one session" in recommend(steps, held(steps, False), 1.0, 64)
