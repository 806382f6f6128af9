"""A bot may do anything (exit, interrupt, raise a bare BaseException, swallow its
cancellation, leak a task that will not stop, hang in readyz()): the service contains it.
End to end, against the real process."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import b64, wait_for
from tests.metrics import scrape, value


def final_states(log: str) -> dict[str, str]:
    pattern = re.compile(
        r"\| ([^ |]+) \| app\.sessions \| session (completed|failed|timed_out|cancelled) kind="
    )
    return {m.group(1): m.group(2) for m in pattern.finditer(log)}


def failed_count(url: str, kind: str = "pipecat") -> float:
    return value(scrape(url), "botdock_sessions_finished_total", kind=kind, state="failed")


def bot_call(url: str, session_id: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/bot", json=body, headers={"x-daily-session-id": session_id}, timeout=30
    )


@pytest.mark.parametrize(
    ("module", "faults"),
    [
        (
            "tests.bots.hostile",
            {
                "sys_exit": "SystemExit",
                "sys_exit_0": "SystemExit",
                "keyboard_interrupt": "KeyboardInterrupt",
                "generator_exit": "GeneratorExit",
                "custom_base": "CustomStop",
            },
        ),
        (
            "tests.bots.sync_hostile",
            {
                "sys_exit": "SystemExit",
                "keyboard_interrupt": "KeyboardInterrupt",
                "custom_base": "BaseException",
            },
        ),
    ],
    ids=["async", "sync"],
)
def test_exit_interrupt_and_base_exceptions_fail_only_their_session(
    server_for: Any, module: str, faults: dict[str, str]
) -> None:
    server = server_for({"BOT_MODULE": module, "MAX_SESSIONS": "3", "DRAIN_TIMEOUT_SECS": "0"})
    bystander = httpx.post(f"{server.url}/start", json={"body": {"fault": "sleep"}})
    assert bystander.status_code == 201
    for fault, name in faults.items():
        response = bot_call(server.url, f"{fault}-1", {"fault": fault})
        assert response.status_code == 500, fault
        assert response.json() == {
            "error": "bot_failed",
            "detail": f"bot() raised an exception; session {fault}-1 failed "
            "(the service log has the traceback)",
        }
        assert "session failed kind=pipecat" in server.log()
        assert f"(bot raised {name})" in server.log()
    states = final_states(server.log())
    assert {k: v for k, v in states.items() if k in {f"{f}-1" for f in faults}} == {
        f"{f}-1": "failed" for f in faults
    }
    assert failed_count(server.url) == len(faults)
    assert server.log().count("Traceback (most recent call last)") >= len(faults)
    # Nothing else happened: the bystander still runs, the service is ready and drains cleanly.
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    sessions = httpx.get(f"{server.url}/sessions").json()["sessions"]
    assert [s["sessionId"] for s in sessions] == [bystander.json()["sessionId"]]
    assert server.proc.poll() is None
    server.signal()
    assert server.wait(20) == 0


def test_the_cause_decides_the_final_state_when_the_bot_swallows_cancellation(
    server_for: Any,
) -> None:
    """A bot that catches CancelledError and returns (as Pipecat's PipelineRunner does) ends
    as timed_out or cancelled, never completed."""
    server = server_for(
        {"BOT_MODULE": "tests.bots.hostile", "SESSION_TIMEOUT_SECS": "1", "DRAIN_TIMEOUT_SECS": "0"}
    )
    timed_out = bot_call(server.url, "limit-1", {"fault": "swallow_cancel_return"})
    assert timed_out.status_code == 504
    assert timed_out.json()["detail"] == "session limit-1: session exceeded its limit of 1s"

    async def websocket_close() -> tuple[int, str]:
        body = b64({"fault": "swallow_cancel_return"})
        async with connect(f"{server.ws_url}/ws?body={body}") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason

    assert asyncio.run(websocket_close()) == (4408, "session exceeded its limit of 1s")

    server2 = server_for({"BOT_MODULE": "tests.bots.hostile", "DRAIN_TIMEOUT_SECS": "0"})
    started = httpx.post(f"{server2.url}/start", json={"body": {"fault": "swallow_cancel_return"}})
    cancelled_id = started.json()["sessionId"]
    wait_for(lambda: "session started" in server2.log())
    assert httpx.delete(f"{server2.url}/sessions/{cancelled_id}").status_code == 202
    wait_for(lambda: cancelled_id in final_states(server2.log()))
    drained = httpx.post(f"{server2.url}/start", json={"body": {"fault": "swallow_cancel_return"}})
    drained_id = drained.json()["sessionId"]
    wait_for(lambda: server2.log().count("session started") == 2)
    server2.signal()
    assert server2.wait(20) == 0
    states = final_states(server2.log())
    assert (states[cancelled_id], states[drained_id]) == ("cancelled", "cancelled")
    assert "completed" not in final_states(server.log()).values()


def test_a_bot_that_never_stops_is_abandoned_after_the_grace(server_for: Any) -> None:
    server = server_for(
        {"BOT_MODULE": "tests.bots.hostile", "SESSION_TIMEOUT_SECS": "1", "MAX_SESSIONS": "1"}
    )
    response = bot_call(server.url, "stubborn-1", {"fault": "swallow_cancel_forever"})
    assert response.status_code == 504
    log = server.log()
    assert re.search(
        r"\| stubborn-1 \| app\.sessions \| the bot did not stop within 2s of being timed out: "
        r"its slot is released now and its task is left running",
        log,
    )
    assert final_states(log)["stubborn-1"] == "timed_out"
    # Its slot is free again: with MAX_SESSIONS=1 a new session starts and /readyz is 200.
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    started = httpx.post(f"{server.url}/start", json={"body": {"fault": "swallow_cancel_forever"}})
    assert started.status_code == 201
    session_id = started.json()["sessionId"]
    wait_for(lambda: server.log().count("session started") == 2)
    assert httpx.delete(f"{server.url}/sessions/{session_id}").status_code == 202
    wait_for(lambda: final_states(server.log()).get(session_id) == "cancelled")
    assert httpx.get(f"{server.url}/sessions").json()["sessions"] == []


def test_sigterm_exits_despite_bots_and_tasks_that_ignore_cancellation(server_for: Any) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.hostile", "DRAIN_TIMEOUT_SECS": "1"})
    assert bot_call(server.url, "leaker", {"fault": "leak_stubborn_task"}).json() == {}
    started = httpx.post(f"{server.url}/start", json={"body": {"fault": "swallow_cancel_forever"}})
    session_id = started.json()["sessionId"]
    wait_for(lambda: server.log().count("session started") == 2)
    signalled = time.monotonic()
    server.signal()
    # Drain 1 s, then the session's 2 s grace, then 2 s for leftover tasks: well within 15 s.
    assert server.wait(15) == 0
    elapsed = time.monotonic() - signalled
    log = server.log()
    assert final_states(log)[session_id] == "cancelled"
    assert "the bot did not stop within 2s of being cancelled" in log
    assert (
        f"2 task(s) ignored cancellation at exit (session-{session_id}, stubborn-leak): "
        "exiting without them"
    ) in log
    assert elapsed >= 1  # the drain timeout was honoured before cancelling


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("block", "bot readyz() did not answer within 1s (READYZ_TIMEOUT_SECS)"),
        ("hang", "bot readyz() did not answer within 1s (READYZ_TIMEOUT_SECS)"),
        ("exit", "bot readyz() raised SystemExit"),
    ],
)
def test_readyz_is_bounded_and_evaluated_once_at_a_time(
    server_for: Any, fault: str, why: str
) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.bad_readyz", "READYZ_FAULT": fault})
    before = httpx.get(f"{server.url}/health").json()["process"]
    for _ in range(5):
        response = httpx.get(f"{server.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {"error": "not_ready", "detail": why}
    after = httpx.get(f"{server.url}/health").json()["process"]
    # One evaluation in flight at most: one thread (sync) or one task (async), not one a probe.
    assert after["threads"] <= before["threads"] + 1
    assert after["asyncioTasks"] <= before["asyncioTasks"] + 1
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.post(f"{server.url}/bot", json={}).json() == {}
