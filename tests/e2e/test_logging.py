"""What the real process logs: one pipeline, one format, the session id where it belongs and
nowhere else, and no private query values. JSON format (`LOG_FORMAT=json`) makes each line
easy to read back."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.helpers import b64, transport_ws_url, wait_until
from tests.server import ServerFactory, ServerProcess

MARKER = "private-caller-data-5d41402abc"
DRAIN_MESSAGES = ("SIGTERM received", "draining:", "drain complete")


def entries(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the server's output, each parsed as one JSON object (fails otherwise)."""
    return [json.loads(line) for line in server.log().splitlines()]


def handshake_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [e for e in entries(server) if '"WebSocket /ws' in e["message"]]


def logged(server: ServerProcess, text: str) -> bool:
    return text in server.log()


async def test_websocket_handshake_is_logged_once_with_session_id_and_no_query_values(
    server_for: ServerFactory,
) -> None:
    server = server_for({"LOG_FORMAT": "json"})
    body = b64({"marker": MARKER})
    async with connect(f"{server.ws_url}/ws?body={body}") as ws:
        session_id = json.loads(await ws.recv())["session_id"]

    async def completed() -> bool:
        return logged(server, "session completed kind=websocket")

    await wait_until(completed)
    lines = handshake_lines(server)
    assert [line["session_id"] for line in lines] == [session_id]
    assert lines[0]["message"].endswith('"WebSocket /ws?body=[redacted]" [accepted]')
    chatter = {"connection open", "connection closed"}
    assert [e for e in entries(server) if e["message"] in chatter] == []
    log = server.log()
    assert MARKER not in log
    assert body not in log


async def test_refused_websocket_is_logged_once_without_query_values(
    server_for: ServerFactory,
) -> None:
    server = server_for({"LOG_FORMAT": "json"})
    body = b64([MARKER])  # valid base64, but not a JSON object: refused with 4422
    with pytest.raises(ConnectionClosed) as closed:
        async with connect(f"{server.ws_url}/ws?body={body}") as ws:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4422

    async def refused() -> bool:
        return logged(server, "[refused 4422]")

    await wait_until(refused)
    lines = handshake_lines(server)
    assert [(line["message"].split(" - ", 1)[1], line["session_id"]) for line in lines] == [
        ('"WebSocket /ws?body=[redacted]" [refused 4422]', "-")
    ]
    assert MARKER not in server.log()
    assert body not in server.log()


async def test_websocket_to_unknown_path_is_logged_without_query_values(
    server_for: ServerFactory,
) -> None:
    server = server_for({"LOG_FORMAT": "json"})
    with pytest.raises(InvalidStatus):
        async with connect(f"{server.ws_url}/nowhere?body={MARKER}"):
            pass

    async def refused() -> bool:
        return logged(server, '"WebSocket /nowhere')

    await wait_until(refused)
    lines = [e["message"] for e in entries(server) if '"WebSocket /nowhere' in e["message"]]
    assert [line.split(" - ", 1)[1] for line in lines] == [
        '"WebSocket /nowhere?body=[redacted]" 403'
    ]
    assert MARKER not in server.log()


def test_drain_lines_carry_no_session_id_when_sigterm_lands_inside_a_session(
    server_for: ServerFactory,
) -> None:
    server = server_for(
        {"LOG_FORMAT": "json", "BOT_MODULE": "tests.bots.self_signal", "DRAIN_TIMEOUT_SECS": "1"}
    )
    session_id = httpx.post(f"{server.url}/start").json()["sessionId"]
    assert server.wait() == 0
    lines = entries(server)
    server_lines = [e for e in lines if e["logger"] in ("app.server", "uvicorn.error")]
    drain = [e for e in lines if e["message"].startswith(DRAIN_MESSAGES)]
    assert [e["message"].split(":")[0] for e in drain] == [
        "SIGTERM received",
        "draining",
        "drain complete",
    ]
    assert {e["session_id"] for e in server_lines + drain} == {"-"}
    session_lines = [e["message"] for e in lines if e["session_id"] == session_id]
    assert session_lines == [
        "session started kind=pipecat timeout=7200s",
        "self-signal bot sending SIGTERM x1",
        session_lines[-1],
    ]
    assert session_lines[-1].startswith("session cancelled kind=pipecat")
    assert session_lines[-1].endswith("(drain timeout reached)")


def test_forced_exit_keeps_session_ids_on_session_lines_only(server_for: ServerFactory) -> None:
    server = server_for({"LOG_FORMAT": "json", "BOT_MODULE": "tests.bots.self_signal"})
    started = httpx.post(f"{server.url}/start", json={"body": {"signals": 2}})
    session_id = started.json()["sessionId"]
    assert server.wait() == 1
    lines = entries(server)
    cut = [e for e in lines if "forced exit on a second SIGTERM" in e["message"]]
    assert [e["session_id"] for e in cut] == [session_id]
    exiting = [e for e in lines if e["message"].startswith("second SIGTERM: exiting now")]
    assert [e["session_id"] for e in exiting] == ["-"]


async def test_python_warnings_go_through_the_pipeline_with_the_session_id(
    server_for: ServerFactory,
) -> None:
    server = server_for({"LOG_FORMAT": "json", "BOT_MODULE": "tests.bots.warner"})
    session_id = httpx.post(f"{server.url}/start").json()["sessionId"]

    async def completed() -> bool:
        return logged(server, "session completed kind=pipecat")

    await wait_until(completed)
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    lines = entries(server)  # every line is one JSON object, the warnings' included
    warned = [
        (e["session_id"], e["level"], e["message"].split(": ", 1)[1])
        for e in lines
        if e["logger"] == "py.warnings"
    ]
    assert warned == [
        ("-", "WARNING", "DeprecationWarning: importing tests.bots.warner is deprecated"),
        (session_id, "WARNING", "DeprecationWarning: calling warner's bot() is deprecated"),
        (session_id, "WARNING", "UserWarning: warner's bot() says careful"),
    ]


def test_a_crash_in_a_bots_own_thread_is_one_log_line_with_the_session_id(
    server_for: ServerFactory,
) -> None:
    server = server_for({"LOG_FORMAT": "json", "BOT_MODULE": "tests.bots.thread_crasher"})
    response = httpx.post(f"{server.url}/bot", json={}, headers={"x-daily-session-id": "t-1"})
    assert response.json() == {}  # the thread's failure is not the session's
    crashes = [e for e in entries(server) if e["logger"] == "threading"]
    assert len(crashes) == 1
    crash = crashes[0]
    assert (crash["level"], crash["session_id"]) == ("ERROR", "t-1")
    assert crash["message"] == "thread bot-worker raised ValueError"
    assert "ValueError: the bot's own thread failed" in crash["exception"]
    assert httpx.get(f"{server.url}/readyz").status_code == 200


@pytest.mark.parametrize("name", ["%74oken", "to%6Ben", "TOKEN", "token"])
async def test_api_key_never_reaches_the_log_however_the_query_spells_it(
    server_for: ServerFactory, name: str
) -> None:
    key = "sk-spelled-0123456789"
    server = server_for({"API_KEY": key})
    response = httpx.get(f"{server.url}/sessions?{name}={key}")
    assert response.status_code == 401  # HTTP routes take the key as a header only
    try:
        async with connect(f"{server.ws_url}/ws?{name}={key}") as ws:
            await ws.recv()
    except ConnectionClosed:
        pass
    server.stop()
    log = server.log()
    assert key not in log
    assert f"/sessions?{name}=[redacted]" in log


async def test_an_announced_sessions_token_never_reaches_the_log(server_for: ServerFactory) -> None:
    server = server_for({"SESSION_MODE": "websocket"})
    answer = httpx.post(f"{server.url}/start", json={}).json()
    token = answer["token"]
    async with connect(transport_ws_url(answer)) as ws:
        await ws.send("ping")
        assert await ws.recv() != ""
    assert token not in server.log()
