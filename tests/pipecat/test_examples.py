"""The bots of examples/: the RTVI echo bot in the real service, driven by a client speaking
RTVI in Pipecat's protobuf frames as Pipecat's JS client does, and the quickstart bot's
pipeline built with placeholder keys and no network."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import socket
import struct
from typing import Any

import httpx
import pipecat
import pytest
from pipecat.frames.protobufs import frames_pb2
from websockets.asyncio.client import ClientConnection, connect

from tests.helpers import wait_for
from tests.pipecat.test_sessions import (
    PLAIN_WEBSOCKET,
    finished,
    json_lines,
    rtvi_frame,
    stop_and_check_drain,
)
from tests.server import ServerFactory, ServerProcess

HAS_WORKER = importlib.util.find_spec("pipecat.pipeline.worker") is not None  # Pipecat 1.3+

pytestmark = pytest.mark.skipif(
    not (HAS_WORKER and PLAIN_WEBSOCKET),
    reason=(
        f"the examples are written for Pipecat 1.3 and later (PipelineWorker, WorkerRunner, "
        f"create_transport on a plain WebSocket); this is Pipecat {pipecat.__version__}"
    ),
)

SAMPLE_RATE = 16000
# 20 ms of a square wave at 16 kHz, 16-bit mono: audio a client's microphone would send.
TONE = b"".join(struct.pack("<h", 8000 if (i // 20) % 2 else -8000) for i in range(320))


def rtvi(type_: str, id_: str, data: Any) -> dict[str, Any]:
    return {"label": "rtvi-ai", "type": type_, "id": id_, "data": data}


def audio_frame(pcm: bytes) -> bytes:
    """The user's audio as Pipecat's JS client sends it: a protobuf `AudioRawFrame`."""
    audio = frames_pb2.AudioRawFrame(audio=pcm, sample_rate=SAMPLE_RATE, num_channels=1)
    data: bytes = frames_pb2.Frame(audio=audio).SerializeToString()
    return data


class RTVIClient:
    """What a client gets on the socket: RTVI messages and audio frames, apart."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.audio: list[Any] = []

    async def _read_one(self) -> None:
        frame = frames_pb2.Frame.FromString(await self.ws.recv())
        kind = frame.WhichOneof("frame")
        if kind == "message":
            self.messages.append(json.loads(frame.message.data))
        elif kind == "audio":
            self.audio.append(frame.audio)

    async def message(self, type_: str, id_: str | None = None) -> dict[str, Any]:
        """The first RTVI message of `type_` (and `id_`), reading until it comes."""
        async with asyncio.timeout(15):
            while True:
                for message in self.messages:
                    if message.get("type") == type_ and id_ in (None, message.get("id")):
                        return message
                await self._read_one()

    async def request(self, id_: str, data: Any) -> None:
        await self.ws.send(rtvi_frame(rtvi("client-message", id_, data)))

    async def audio_back(self) -> Any:
        """Send the tone every 20 ms until audio that is not silence comes back."""
        async with asyncio.timeout(15):
            while not any(any(f.audio) for f in self.audio):
                await self.ws.send(audio_frame(TONE))
                try:
                    async with asyncio.timeout(0.02):
                        await self._read_one()
                except TimeoutError:
                    pass
        return next(f for f in self.audio if any(f.audio))


@pytest.fixture
def echo_server(server_for: ServerFactory) -> ServerProcess:
    server: ServerProcess = server_for(
        {
            "BOT_MODULE": "examples.rtvi_echo_bot",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "SESSION_MODE": "websocket",
        },
        wait=False,
    )
    server.wait_answering("/livez", timeout=90)  # importing Pipecat takes seconds
    return server


def running_session_id(server: ServerProcess) -> str:
    sessions = httpx.get(f"{server.url}/sessions").json()["sessions"]
    assert len(sessions) == 1, sessions
    assert sessions[0]["state"] == "running"
    session_id: str = sessions[0]["sessionId"]
    return session_id


def test_rtvi_echo_bot_answers_a_pipecat_client(echo_server: ServerProcess) -> None:
    """`client-ready` gets `bot-ready`, a request its data back, audio is played back, and
    hanging up completes the session."""

    async def conversation() -> tuple[str, dict[str, Any], dict[str, Any], Any]:
        async with connect(f"{echo_server.ws_url}/ws") as ws:
            client = RTVIClient(ws)
            await ws.send(rtvi_frame(rtvi("client-ready", "1", {"version": "1.0.0"})))
            ready = await client.message("bot-ready", "1")
            session_id = await asyncio.to_thread(running_session_id, echo_server)
            await client.request("2", {"t": "get-weather", "d": {"city": "Lisbon", "n": [1, 2]}})
            response = await client.message("server-response", "2")
            audio = await client.audio_back()
        return session_id, ready, response, audio

    session_id, ready, response, audio = asyncio.run(conversation())
    assert ready["label"] == "rtvi-ai"
    assert ready["data"]["about"]["library"] == "pipecat-ai"
    assert response == rtvi(
        "server-response", "2", {"t": "get-weather", "d": {"city": "Lisbon", "n": [1, 2]}}
    )
    assert audio.num_channels == 1
    assert audio.sample_rate > 0
    wait_for(lambda: finished(echo_server, session_id) is not None, timeout=30)
    assert finished(echo_server, session_id) == "completed"
    assert httpx.get(f"{echo_server.url}/sessions").json() == {"sessions": []}
    messages = [line["message"] for line in json_lines(echo_server)]
    assert "client message 'get-weather'" in messages
    stop_and_check_drain(echo_server)


def test_rtvi_echo_bot_rejects_a_request_without_its_type(echo_server: ServerProcess) -> None:
    """A `client-message` whose data lacks `t` gets RTVI's `error-response`, and the same
    session still answers the next request."""

    async def conversation() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(f"{echo_server.ws_url}/ws") as ws:
            client = RTVIClient(ws)
            await ws.send(rtvi_frame(rtvi("client-ready", "1", {"version": "1.0.0"})))
            await client.message("bot-ready", "1")
            await client.request("2", {"d": "no type"})
            error = await client.message("error-response", "2")
            await client.request("3", {"t": "ping", "d": "hello"})
            response = await client.message("server-response", "3")
        return error, response

    error, response = asyncio.run(conversation())
    assert error["data"]["error"].startswith(
        "Invalid message: 1 validation error for RawClientMessageData\nt\n  Field required"
    ), error
    assert response == rtvi("server-response", "3", {"t": "ping", "d": "hello"})
    assert httpx.get(f"{echo_server.url}/readyz").status_code == 200
    stop_and_check_drain(echo_server)


class NoNetwork(Exception):
    pass


def test_quickstart_bot_builds_its_pipeline_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """With placeholder keys and every connection refused, the quickstart's pipeline is
    built: transport input, Deepgram, user aggregator (Silero VAD), OpenAI, Cartesia,
    transport output, assistant aggregator."""
    from fastapi import WebSocket
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMAssistantAggregator,
        LLMUserAggregator,
    )
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.responses.llm import OpenAIResponsesLLMService
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketTransport

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise NoNetwork(args)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.setenv(name, f"placeholder-{name}")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-placeholder")
    monkeypatch.setenv("CARTESIA_VOICE_ID", "voice-placeholder")
    quickstart = importlib.import_module("examples.quickstart_bot")

    async def never(*args: Any) -> Any:
        raise AssertionError("the socket is not used while building")

    # A FastAPI WebSocket that is never connected, with the example's own params.
    websocket = WebSocket({"type": "websocket", "path": "/ws", "headers": []}, never, never)
    params = quickstart.TRANSPORT_PARAMS["websocket"]()
    transport = FastAPIWebsocketTransport(websocket=websocket, params=params)
    pipeline, context = quickstart.build_pipeline(transport)

    processors = pipeline.processors[1:-1]  # between the pipeline's own source and sink
    assert [type(p) for p in processors[1:5]] == [
        DeepgramSTTService,
        LLMUserAggregator,
        OpenAIResponsesLLMService,
        CartesiaTTSService,
    ]
    assert processors[0] is transport.input()
    assert processors[5] is transport.output()
    assert isinstance(processors[6], LLMAssistantAggregator)
    assert len(processors) == 7
    user, llm, tts = processors[2:5]
    assert isinstance(user._params.vad_analyzer, SileroVADAnalyzer)
    assert user.context is context
    assert llm._settings.model == "gpt-placeholder"
    assert tts._settings.voice == "voice-placeholder"
    assert params.audio_in_enabled and params.audio_out_enabled
    assert type(params.serializer).__name__ == "ProtobufFrameSerializer"
