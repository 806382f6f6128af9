"""A bot that blocks the event loop: the lag is measured and shown (`/health`, `/metrics`),
`/readyz` turns 503 while it is above MAX_LOOP_LAG_SECS, and a warning names the session
and the line that held the loop. End to end, against the real process."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.helpers import wait_for
from tests.metrics import scrape, value
from tests.server import ServerFactory, ServerProcess, run_to_exit


def lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines()]


def loop_warnings(server: ServerProcess) -> list[dict[str, Any]]:
    return [line for line in lines(server) if line["logger"] == "app.loop_monitor"]


def test_a_blocked_loop_is_measured_named_and_makes_readyz_fail(
    server_for: ServerFactory,
) -> None:
    server = server_for(
        {
            "BOT_MODULE": "tests.bots.hostile",
            "LOG_FORMAT": "json",
            "SESSION_MODE": "pipecat",
            "LOOP_LAG_WARN_SECS": "0.3",
            "MAX_LOOP_LAG_SECS": "0.5",
        }
    )
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    healthy = httpx.get(f"{server.url}/health").json()["eventLoop"]
    assert healthy["windowSecs"] == 5
    assert 0 <= healthy["lagSecs"] < 0.3, healthy

    started = httpx.post(
        f"{server.url}/start",
        json={"body": {"fault": "block_loop_in_task", "secs": 1.5}},
    )
    assert started.status_code == 201
    session_id = started.json()["sessionId"]

    # While the loop is held, the watchdog thread names who holds it.
    wait_for(lambda: any("so far" in line["message"] for line in loop_warnings(server)))
    ready = httpx.get(f"{server.url}/readyz", timeout=10)  # answered once the loop is free
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert detail.startswith("event loop lag 1.") or detail.startswith("event loop lag 2."), detail
    assert detail.endswith("in the last 5s is above MAX_LOOP_LAG_SECS (0.5s)")

    warned = loop_warnings(server)
    during = next(line for line in warned if "so far" in line["message"])
    assert during["level"] == "WARNING"
    assert during["session_id"] == session_id
    assert f"by session {session_id} (task " in during["message"]
    assert "tests/bots/hostile.py:" in during["message"]
    assert " in _block): async code must not block" in during["message"]
    wait_for(lambda: any("was blocked" in line["message"] for line in loop_warnings(server)))
    after = next(line for line in loop_warnings(server) if "was blocked" in line["message"])
    assert after["session_id"] == session_id
    assert after["message"].endswith(f"by session {session_id}")

    health = httpx.get(f"{server.url}/health").json()
    assert health["eventLoop"]["maxLagSecs"] > 1.0
    text = scrape(server.url)
    assert value(text, "botdock_event_loop_lag_seconds_count") > 0
    slow = value(text, "botdock_event_loop_lag_seconds_count") - value(
        text, "botdock_event_loop_lag_seconds_bucket", le="1.0"
    )
    assert slow >= 1  # the stall's tick, in a bucket above 1 s

    # The session itself completed; once the stall leaves the window the service is ready.
    wait_for(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, timeout=15)
    finals = [line for line in lines(server) if line["logger"] == "app.sessions"]
    assert any(
        line["session_id"] == session_id and line["message"].startswith("session completed")
        for line in finals
    )


def test_invalid_loop_settings_stop_start_up() -> None:
    for name, given, why in [
        ("MAX_LOOP_LAG_SECS", "0", "Input should be greater than 0"),
        ("LOOP_LAG_WARN_SECS", "x", "Input should be a valid number, unable to parse string"),
    ]:
        done = run_to_exit({name: given})
        assert done.returncode == 2
        assert done.stderr.startswith(f"botdock: invalid configuration: {name}: {why}")
        assert done.stderr.rstrip().endswith(f"(got {given!r})")
