"""Capacity, timeouts, cancellation, drain and metrics against the real process, with real
signals."""

import asyncio
import json
import re
import signal
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests import secrets
from tests.helpers import wait_for, wait_until
from tests.metrics import scrape, value
from tests.server import ServerFactory


def final_states(log: str) -> dict[str, str]:
    """session id -> final state, from the one line each session logs when it ends."""
    pattern = re.compile(
        r"\| ([^ |]+) \| app\.sessions \| session (completed|failed|timed_out|"
        r"cancelled) kind="
    )
    return {m.group(1): m.group(2) for m in pattern.finditer(log)}


def test_burst_over_capacity_gets_exactly_max_sessions(server_for: ServerFactory) -> None:
    server = server_for({"MAX_SESSIONS": "5"})

    async def scenario() -> None:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as client:
            # Sessions that outlast the test's checks, ended by the test itself.
            responses = await asyncio.gather(
                *(client.post("/start", json={"body": {"sleep": 60}}) for _ in range(25))
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [201] * 5 + [429] * 20
            for r in responses:
                if r.status_code == 429:
                    assert r.headers["retry-after"] == "1"
                    assert r.json() == {
                        "error": "at_capacity",
                        "detail": "all 5 session slots are in use (MAX_SESSIONS); retry shortly",
                    }
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"error": "not_ready", "detail": "at capacity: 5/5 sessions"}
            async with connect(f"{server.ws_url}/ws") as ws:  # a WebSocket over capacity
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4429
            assert closed.value.rcvd.reason == (
                "all 5 session slots are in use (MAX_SESSIONS); retry shortly"
            )

            for r in responses:
                if r.status_code == 201:
                    await client.delete(f"/sessions/{r.json()['sessionId']}")

            async def ready_again() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await wait_until(ready_again)

    asyncio.run(scenario())
    samples = scrape(server.url)
    assert value(samples, "botdock_sessions_started_total", kind="pipecat") == 5
    assert (
        value(samples, "botdock_sessions_rejected_total", kind="pipecat", reason="capacity") == 20
    )
    assert (
        value(samples, "botdock_sessions_rejected_total", kind="websocket", reason="capacity") == 1
    )
    assert value(samples, "botdock_sessions_finished_total", kind="pipecat", state="cancelled") == 5


def test_session_past_timeout_is_cancelled_and_counted(server_for: ServerFactory) -> None:
    server = server_for({"SESSION_TIMEOUT_SECS": "0.5"})
    response = httpx.post(  # the bot would sleep 30 s: a 504 is the limit firing
        f"{server.url}/bot", json={"sleep": 30}, headers={"x-daily-session-id": "slow-1"}
    )
    assert response.status_code == 504
    assert response.json() == {
        "error": "session_timed_out",
        "detail": "session slow-1: session exceeded its limit of 0.5s",
    }
    samples = scrape(server.url)
    assert value(samples, "botdock_sessions_finished_total", kind="pipecat", state="timed_out") == 1
    assert value(samples, "botdock_sessions_active", kind="pipecat") == 0
    assert final_states(server.log()) == {"slow-1": "timed_out"}


def test_smaller_pcc_max_session_seconds_wins(server_for: ServerFactory) -> None:
    server = server_for({"SESSION_TIMEOUT_SECS": "60"})
    response = httpx.post(
        f"{server.url}/bot",
        json={"sleep": 30},
        headers={"x-daily-session-id": "pcc-limit", "x-pcc-max-session-seconds": "1"},
    )
    assert response.status_code == 504
    assert response.json()["detail"] == "session pcc-limit: session exceeded its limit of 1s"


async def test_websocket_past_timeout_is_closed_with_reason(server_for: ServerFactory) -> None:
    server = server_for({"SESSION_TIMEOUT_SECS": "0.5"})
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.recv()  # the recorder's greeting; then it waits for messages
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4408,
        "session exceeded its limit of 0.5s",
    )
    samples = scrape(server.url)
    assert (
        value(samples, "botdock_sessions_finished_total", kind="websocket", state="timed_out") == 1
    )


async def test_cancel_http_and_websocket_sessions(server_for: ServerFactory) -> None:
    server = server_for()
    async with httpx.AsyncClient(base_url=server.url) as client:
        session_id = (await client.post("/start", json={"body": {"sleep": 30}})).json()["sessionId"]
        response = await client.delete(f"/sessions/{session_id}")
        assert response.status_code == 202
        assert response.json() == {"sessionId": session_id, "state": "cancelling"}

        async with connect(f"{server.ws_url}/ws") as ws:
            greeting = json.loads(await ws.recv())
            ws_id = greeting["session_id"]
            assert (await client.delete(f"/sessions/{ws_id}")).status_code == 202
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "cancelled by request")

        missing = await client.delete("/sessions/no-such-session")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": "unknown_session",
            "detail": "no active session no-such-session",
        }

        async def none_active() -> bool:
            return bool((await client.get("/health")).json()["activeSessions"] == 0)

        await wait_until(none_active)
    assert final_states(server.log()) == {session_id: "cancelled", ws_id: "cancelled"}
    samples = scrape(server.url)
    assert value(samples, "botdock_sessions_finished_total", kind="pipecat", state="cancelled") == 1
    assert (
        value(samples, "botdock_sessions_finished_total", kind="websocket", state="cancelled") == 1
    )


def test_metrics_match_what_the_test_did(server_for: ServerFactory) -> None:
    server = server_for()
    httpx.post(f"{server.url}/bot", json={})
    httpx.post(f"{server.url}/bot", json={})
    httpx.post(f"{server.url}/bot", json={"raise": "x"})
    httpx.post(
        f"{server.url}/bot",
        headers={"x-daily-room-url": "https://a.daily.co/r", "x-daily-room-token": "t"},
    )
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "dup"}, json={"sleep": 0})
    samples = scrape(server.url)
    assert value(samples, "botdock_sessions_started_total", kind="pipecat") == 4
    assert value(samples, "botdock_sessions_started_total", kind="daily") == 1
    assert value(samples, "botdock_sessions_finished_total", kind="pipecat", state="completed") == 3
    assert value(samples, "botdock_sessions_finished_total", kind="pipecat", state="failed") == 1
    assert value(samples, "botdock_sessions_finished_total", kind="daily", state="completed") == 1
    assert value(samples, "botdock_session_duration_seconds_count", kind="pipecat") == 4
    assert value(samples, "botdock_session_start_latency_seconds_count", kind="pipecat") == 4
    assert value(samples, "botdock_sessions_active", kind="pipecat") == 0


# -- drain --------------------------------------------------------------------------------


def test_sigterm_drains_then_exits_zero(server_for: ServerFactory) -> None:
    # Windows of seconds on each side, for a loaded machine: the short sessions are seen
    # running before SIGTERM and end well inside the drain; the checks run during it.
    server = server_for({"DRAIN_TIMEOUT_SECS": "4"})

    async def scenario() -> float:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            long_id = (await client.post("/start", json={"body": {"sleep": 60}})).json()[
                "sessionId"
            ]
            short = [
                asyncio.create_task(
                    client.post(
                        "/bot", json={"sleep": 2}, headers={"x-daily-session-id": f"short-{i}"}
                    )
                )
                for i in range(2)
            ]

            async def all_running() -> bool:
                return bool((await client.get("/health")).json()["activeSessions"] == 3)

            await wait_until(all_running)
            sent = time.monotonic()
            server.signal(signal.SIGTERM)

            async def draining() -> bool:
                return bool((await client.get("/health")).json()["draining"])

            await wait_until(draining)
            refused = await client.post("/start", json={})
            assert refused.status_code == 503
            assert refused.json() == {
                "error": "draining",
                "detail": "the service is shutting down and accepts no new sessions",
            }
            ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()["detail"]) == (
                503,
                "draining: the service is shutting down",
            )
            for task in short:  # in-flight POST /bot calls get their answer
                response = await task
                assert (response.status_code, response.json()) == (200, {})
            assert long_id
        exit_code = await asyncio.to_thread(server.wait, 20)
        assert exit_code == 0
        return time.monotonic() - sent

    elapsed = asyncio.run(scenario())
    assert elapsed > 3.5  # the long session was cut at DRAIN_TIMEOUT_SECS, not before
    states = final_states(server.log())
    assert states.pop("short-0") == "completed"
    assert states.pop("short-1") == "completed"
    assert list(states.values()) == ["cancelled"]
    assert "(drain timeout reached)" in server.log()
    print(f"\nSIGTERM to exit: {elapsed:.2f}s with DRAIN_TIMEOUT_SECS=4")


def test_second_sigterm_exits_at_once(server_for: ServerFactory) -> None:
    server = server_for({"DRAIN_TIMEOUT_SECS": "60"})
    httpx.post(f"{server.url}/start", json={"body": {"sleep": 60}})
    server.signal(signal.SIGTERM)
    wait_for(lambda: httpx.get(f"{server.url}/health").json()["draining"])
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 1  # the drain alone would take 60 s
    log = server.log()
    assert "second SIGTERM: exiting now with 1 session(s) cut" in log
    assert "(forced exit on a second SIGTERM)" in log


def test_sigint_drains_like_sigterm(server_for: ServerFactory) -> None:
    server = server_for({"DRAIN_TIMEOUT_SECS": "5"})
    httpx.post(f"{server.url}/bot", json={})
    server.signal(signal.SIGINT)
    assert server.wait(10) == 0
    assert "SIGINT received: draining 0 session(s)" in server.log()


def test_start_during_drain_over_websocket_is_refused(server_for: ServerFactory) -> None:
    server = server_for({"DRAIN_TIMEOUT_SECS": "60"})
    # A session that keeps the drain open until the test ends it.
    session_id = httpx.post(f"{server.url}/start", json={"body": {"sleep": 60}}).json()["sessionId"]
    server.signal(signal.SIGTERM)

    async def scenario() -> None:
        async def draining() -> bool:
            return bool(httpx.get(f"{server.url}/health").json()["draining"])

        await wait_until(draining)
        async with connect(f"{server.ws_url}/ws") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            4503,
            "the service is shutting down and accepts no new sessions",
        )

    asyncio.run(scenario())
    assert httpx.delete(f"{server.url}/sessions/{session_id}").status_code == 202
    assert server.wait(20) == 0  # the drain ends with its last session


# -- API key ------------------------------------------------------------------------------

KEY = secrets.API_KEY


async def test_secrets_never_reach_the_log(server_for: ServerFactory) -> None:
    room_token = secrets.ROOM_TOKEN
    server = server_for({"API_KEY": KEY, "LOG_LEVEL": "DEBUG"})
    auth = {"authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.post(
            "/bot",
            headers={
                **auth,
                "x-daily-room-url": "https://a.daily.co/r",
                "x-daily-room-token": room_token,
            },
        )
        await client.post(
            "/start", headers=auth, json={"room_url": "https://a.daily.co/r", "token": room_token}
        )
        await client.post("/bot", headers={"authorization": f"Bearer {KEY}x"})
    async with connect(f"{server.ws_url}/ws?token={KEY}") as ws:
        await ws.recv()
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0
    log = server.log()
    assert "session completed kind=daily" in log  # the sessions did run and log
    assert "ws?token=[redacted]" in log
    assert KEY not in log
    assert room_token not in log


def test_websocket_handshake_to_unknown_path_is_refused_403(server_for: ServerFactory) -> None:
    server = server_for()

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws_url}/nowhere"):
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())
