"""Pipecat bots in the real service: `create_transport` on the WebSocket botdock accepted,
a real pipeline, and Pipecat's log lines in botdock's logging with the session id."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pipecat
import pytest
from pipecat.frames.protobufs import frames_pb2
from pipecat.runner.types import WebSocketRunnerArguments
from websockets.asyncio.client import connect

from app.ws_detect import PEEK_SECS
from tests.helpers import wait_for
from tests.server import ServerProcess

PLAIN_WEBSOCKET = "transport_type" in WebSocketRunnerArguments.__dataclass_fields__

# Exotel's first two media-stream messages: `create_transport` detects the provider from
# them (Exotel's serializer needs no credentials and never calls out).
EXOTEL: list[dict[str, Any]] = [
    {"event": "connected"},
    {
        "event": "start",
        "start": {
            "stream_sid": "stream-1",
            "call_sid": "call-1",
            "account_sid": "account-1",
            "from": "+15550001",
            "to": "+15550002",
        },
    },
]


def json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """The service's log, every line of which must be one JSON object."""
    lines = server.log().splitlines()
    parsed = []
    for line in lines:
        if line.startswith("[nltk_data]"):
            # Older Pipecat releases (1.0 among them) download NLTK's punkt_tab when their
            # transports are imported, and NLTK prints a failure (no network) itself, outside
            # any logging. Later releases segment sentences with sentencex: no data to fetch.
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return parsed


async def session(server: ServerProcess, path: str, send: list[dict[str, Any]]) -> dict[str, Any]:
    """Open a WebSocket session, send `send`, read the bot's report, hang up."""
    async with connect(f"{server.ws_url}{path}") as ws:
        for message in send:
            await ws.send(json.dumps(message))
        report: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
    return report


def rtvi_frame(message: dict[str, Any]) -> bytes:
    """An RTVI message as Pipecat's JS client sends it: a protobuf frame, in binary."""
    frame = frames_pb2.Frame(message=frames_pb2.MessageFrame(data=json.dumps(message)))
    data: bytes = frame.SerializeToString()
    return data


async def protobuf_session(server: ServerProcess) -> tuple[dict[str, Any], Any]:
    """A session as Pipecat's JS client opens one: a protobuf frame first, nothing in the
    body. The bot's report, and what the bot sent back for the frame."""
    client_ready = {"label": "rtvi-ai", "type": "client-ready", "id": "1", "data": {}}
    async with connect(f"{server.ws_url}/ws") as ws:
        await ws.send(rtvi_frame(client_ready))
        report: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
        echoed = frames_pb2.Frame.FromString(await asyncio.wait_for(ws.recv(), 15))
    return report, json.loads(echoed.message.data)


def finished(server: ServerProcess, session_id: str) -> str | None:
    for line in json_lines(server):
        if line.get("session_id") == session_id and line["logger"] == "app.sessions":
            for state in ("completed", "failed", "timed_out", "cancelled"):
                if line["message"].startswith(f"session {state}"):
                    return state
    return None


def check_pipecat_lines_carry_the_session_id(server: ServerProcess, session_id: str) -> None:
    lines = json_lines(server)
    pipecats = [line for line in lines if line["logger"].split(".")[0] == "pipecat"]
    assert len(pipecats) >= 3, pipecats  # transport params, pipeline start and end
    assert {line["session_id"] for line in pipecats} == {session_id}
    ours = [line["message"] for line in lines if line["session_id"] == session_id]
    assert "bot: running the pipeline" in ours
    assert "bot: pipeline ended" in ours


@pytest.fixture
def pipecat_server(server_for: Any) -> ServerProcess:
    server: ServerProcess = server_for(
        {
            "BOT_MODULE": "tests.pipecat.bots.pipeline",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "SESSION_MODE": "websocket",
        },
        wait=False,
    )
    # Importing Pipecat's pipeline and transports takes seconds (10 s for 1.0 on a busy
    # 2-core machine: scipy, numba), all before the port opens.
    server.wait_answering("/livez", timeout=90)
    return server


def test_start_line_names_pipecat_and_its_banner_is_left_out(
    pipecat_server: ServerProcess,
) -> None:
    messages = [line["message"] for line in json_lines(pipecat_server)]
    assert messages[0].startswith("botdock starting: mode=websocket")
    assert messages[0].endswith(f"(Pipecat {pipecat.__version__})")
    assert not any("ᓚᘏᗢ" in message for message in messages)


def stop_and_check_drain(server: ServerProcess) -> None:
    """The pipeline's runner installed no signal handler: SIGTERM still drains botdock."""
    server.stop()
    assert server.proc is not None
    assert server.proc.returncode == 0
    messages = [line["message"] for line in json_lines(server)]
    assert any(m.startswith("SIGTERM received: draining") for m in messages)


@pytest.mark.skipif(
    not PLAIN_WEBSOCKET, reason="this Pipecat has no transport_type: WebSockets are telephony"
)
def test_create_transport_on_a_plain_websocket(pipecat_server: ServerProcess) -> None:
    """A client speaking protobuf gets Pipecat's plain transport, with no `transport_type`
    set by the bot: botdock set it from the client's first frame, which still reached the
    bot's pipeline."""
    report, echoed = asyncio.run(protobuf_session(pipecat_server))
    assert echoed == {"echo": {"label": "rtvi-ai", "type": "client-ready", "id": "1", "data": {}}}
    session_id = report.pop("session_id")
    assert report == {
        "body": {},
        "is_runner_arguments": True,
        "is_cloud_arguments": True,
        "handle_sigint": False,
        "handle_sigterm": False,
        "pipeline_idle_timeout_secs": 300,
        "transport_type": "websocket",
        "call_id": None,
        "transport": "pipecat.transports.websocket.fastapi.FastAPIWebsocketTransport",
    }
    wait_for(lambda: finished(pipecat_server, session_id) is not None)
    assert finished(pipecat_server, session_id) == "completed"
    check_pipecat_lines_carry_the_session_id(pipecat_server, session_id)
    stop_and_check_drain(pipecat_server)


@pytest.mark.skipif(
    not PLAIN_WEBSOCKET, reason="this Pipecat has no transport_type: WebSockets are telephony"
)
def test_a_client_silent_until_the_bot_speaks_is_plain(pipecat_server: ServerProcess) -> None:
    """Nothing within `PEEK_SECS`: a plain client, whose bot starts after that wait."""
    started = time.monotonic()
    report = asyncio.run(session(pipecat_server, "/ws", []))
    assert time.monotonic() - started >= PEEK_SECS
    assert report["transport_type"] == "websocket"
    assert report["transport"] == "pipecat.transports.websocket.fastapi.FastAPIWebsocketTransport"
    stop_and_check_drain(pipecat_server)


def test_create_transport_detects_a_telephony_websocket(pipecat_server: ServerProcess) -> None:
    report = asyncio.run(session(pipecat_server, "/ws", EXOTEL))
    session_id = report.pop("session_id")
    assert report["transport"] == "pipecat.transports.websocket.fastapi.FastAPIWebsocketTransport"
    assert report["is_runner_arguments"] and report["is_cloud_arguments"]
    if PLAIN_WEBSOCKET:  # Pipecat 1.x releases that tell the bot what they detected
        assert (report["transport_type"], report["call_id"]) == ("exotel", "call-1")
    wait_for(lambda: finished(pipecat_server, session_id) is not None)
    assert finished(pipecat_server, session_id) == "completed"
    check_pipecat_lines_carry_the_session_id(pipecat_server, session_id)
    stop_and_check_drain(pipecat_server)
