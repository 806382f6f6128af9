"""Pipecat bots in the real service: `create_transport` on the WebSocket botdock accepted,
a real pipeline, and Pipecat's log lines in botdock's logging with the session id."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import signal
import time
from typing import Any

import httpx
import pipecat
import pytest
from pipecat.frames.protobufs import frames_pb2
from pipecat.runner.types import WebSocketRunnerArguments
from pipecat.serializers.twilio import TwilioFrameSerializer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.ws_detect import PEEK_SECS
from tests.helpers import wait_for
from tests.metrics import scrape, value
from tests.pipecat.fake_twilio import FakeTwilioApi
from tests.server import ServerFactory, ServerProcess

PLAIN_WEBSOCKET = "transport_type" in WebSocketRunnerArguments.__dataclass_fields__
# Pipecat releases whose Twilio serializer takes the REST API's base URL (1.14 does, 1.0 not).
TWILIO_BASE_URL = "base_url" in inspect.signature(TwilioFrameSerializer).parameters

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

# Each provider's media stream as Pipecat's parser and serializers read one: the handshake
# (Plivo opens with `start` alone; Pipecat's parser reads a second message all the same, so
# the first media message goes to it), one media message of 20 ms of audio (8 kHz mu-law;
# Exotel sends 16-bit PCM), and the event and stream id key of the audio sent back.
SILENCE_MULAW = base64.b64encode(b"\xff" * 160).decode()
SILENCE_PCM = base64.b64encode(b"\x00" * 320).decode()


class Provider:
    def __init__(
        self,
        name: str,
        handshake: list[dict[str, Any]],
        media: dict[str, Any],
        echo: tuple[str, str | None],
        ids: tuple[str, str],
        dtmf: dict[str, Any],
    ) -> None:
        self.name = name
        self.dtmf = dtmf  # the caller pressing `#`
        self.call_id, self.stream_id = ids
        self.handshake = handshake
        self.media = media
        self.echo_event, self.echo_stream_key = echo


PROVIDERS = [
    Provider(
        "twilio",
        [
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "streamSid": "stream-tw",
                    "callSid": "call-tw",
                    "accountSid": "account-tw",
                    "tracks": ["inbound"],
                    "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": "stream-tw",
            },
        ],
        {"event": "media", "streamSid": "stream-tw", "media": {"payload": SILENCE_MULAW}},
        ("media", "streamSid"),
        ("call-tw", "stream-tw"),
        {
            "event": "dtmf",
            "streamSid": "stream-tw",
            "sequenceNumber": "5",
            "dtmf": {"track": "inbound_track", "digit": "#"},
        },
    ),
    Provider(
        "telnyx",
        [
            {"event": "connected", "version": "1.0.0"},
            {
                "event": "start",
                "sequence_number": "1",
                "start": {
                    "call_control_id": "call-tx",
                    "from": "+15550001",
                    "to": "+15550002",
                    "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                },
                "stream_id": "stream-tx",
            },
        ],
        {"event": "media", "stream_id": "stream-tx", "media": {"payload": SILENCE_MULAW}},
        ("media", None),
        ("call-tx", "stream-tx"),
        {"event": "dtmf", "stream_id": "stream-tx", "dtmf": {"digit": "#"}},
    ),
    Provider(
        "plivo",
        [
            {
                "event": "start",
                "sequenceNumber": 0,
                "start": {
                    "streamId": "stream-pl",
                    "callId": "call-pl",
                    "accountId": "account-pl",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                },
            },
        ],
        {"event": "media", "streamId": "stream-pl", "media": {"payload": SILENCE_MULAW}},
        ("playAudio", None),
        ("call-pl", "stream-pl"),
        {"event": "dtmf", "streamId": "stream-pl", "dtmf": {"digit": "#"}},
    ),
    Provider(
        "exotel",
        EXOTEL,
        {"event": "media", "stream_sid": "stream-1", "media": {"payload": SILENCE_PCM}},
        ("media", "stream_sid"),
        ("call-1", "stream-1"),
        {"event": "dtmf", "stream_sid": "stream-1", "dtmf": {"digit": "#", "duration": "250"}},
    ),
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
def pipecat_server(server_for: ServerFactory) -> ServerProcess:
    return start_pipecat_server(server_for)


def start_pipecat_server(server_for: ServerFactory, **settings: str) -> ServerProcess:
    server: ServerProcess = server_for(
        {
            "BOT_MODULE": "tests.pipecat.bots.pipeline",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "SESSION_MODE": "websocket",
            **settings,
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
        "stream_id": None,
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


async def telephony_call(
    server: ServerProcess, provider: Provider
) -> tuple[Any, Any, tuple[int, str]]:
    """A call as the provider streams it: the handshake, then its media message every 20 ms
    (Pipecat's parser may wait for a second message before the bot speaks) until the bot
    has sent its report and played audio back; then the caller presses `#`, which ends the
    bot, and the stream is closed by the service. Returns the report, the audio message
    played back and the close code and reason."""
    async with connect(f"{server.ws_url}/ws") as ws:
        for message in provider.handshake:
            await ws.send(json.dumps(message))

        async def report_and_audio() -> tuple[Any, Any]:
            report = json.loads(await ws.recv())
            while True:
                message = json.loads(await ws.recv())
                if message.get("event") == provider.echo_event:
                    return report, message

        answer = asyncio.ensure_future(report_and_audio())
        try:
            async with asyncio.timeout(15):
                while not answer.done():
                    await ws.send(json.dumps(provider.media))
                    await asyncio.wait({answer}, timeout=0.02)
            report, echo = answer.result()
        finally:
            answer.cancel()
        await ws.send(json.dumps(provider.dtmf))
        async with asyncio.timeout(15):
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None, "the stream ended without the service closing it"
    return report, echo, (closed.value.rcvd.code, closed.value.rcvd.reason)


def test_each_phone_providers_call_is_detected_answered_and_hung_up(
    server_for: ServerFactory,
) -> None:
    """Twilio, Telnyx, Plivo and Exotel media streams on `/ws`, with no `transport_type` set
    by the bot: Pipecat's parser tells the provider and the call, the pipeline plays the
    caller's audio back in the provider's format, and when the bot ends the call (the caller
    pressed `#`) the service closes the stream. With Twilio's credentials, Pipecat's Twilio
    serializer also hangs the call up through Twilio's REST API (a fake one on loopback)."""
    with FakeTwilioApi() as twilio:
        server = start_pipecat_server(
            server_for,
            TEST_TWILIO_API=twilio.url,
            TWILIO_ACCOUNT_SID=twilio.account_sid,
            TWILIO_AUTH_TOKEN=twilio.auth_token,
        )
        session_ids = []
        for provider in PROVIDERS:
            report, echo, close = asyncio.run(telephony_call(server, provider))
            session_ids.append(report["session_id"])
            call_id, stream_id = provider.call_id, provider.stream_id
            assert (report["transport_type"], report["call_id"], report["stream_id"]) == (
                provider.name,
                call_id,
                stream_id,
            )
            assert base64.b64decode(echo["media"]["payload"])
            if provider.echo_stream_key is not None:
                # Exotel's key is `stream_sid`; Pipecat 1.0's serializer wrote Twilio's.
                assert stream_id in (echo.get(provider.echo_stream_key), echo.get("streamSid"))
            # Pipecat's transport closes the socket as its pipeline ends (no reason given),
            # before botdock would close it with "completed".
            assert close[0] == 1000
        for session_id in session_ids:
            wait_for(lambda: finished(server, session_id) is not None)  # noqa: B023
            assert finished(server, session_id) == "completed"
        if TWILIO_BASE_URL:
            assert twilio.hang_ups == [("call-tw", {"Status": ["completed"]})]
        else:  # Pipecat 1.0's serializer reaches only Twilio's public host: hang-up left off
            assert twilio.hang_ups == []
        stop_and_check_drain(server)


async def closed_while_running(server: ServerProcess, stop: Any) -> tuple[str, tuple[int, str]]:
    """Open an Exotel media stream, wait for its pipeline, call `stop(session_id)` and
    return the session id and how the socket was closed."""
    async with connect(f"{server.ws_url}/ws") as ws:
        for message in EXOTEL:
            await ws.send(json.dumps(message))
        report = json.loads(await asyncio.wait_for(ws.recv(), 15))
        await stop(report["session_id"])
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(30):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    return report["session_id"], (closed.value.rcvd.code, closed.value.rcvd.reason)


def final_state(server: ServerProcess, session_id: str) -> str | None:
    wait_for(lambda: finished(server, session_id) is not None)
    return finished(server, session_id)


def test_running_pipeline_cancelled_then_drained(server_for: ServerFactory) -> None:
    """DELETE /sessions/{id} and a drain past DRAIN_TIMEOUT_SECS cancel a running Pipecat
    pipeline: its runner swallows the cancellation, botdock still records it."""
    server = start_pipecat_server(server_for, DRAIN_TIMEOUT_SECS="1")

    async def delete(session_id: str) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.delete(f"/sessions/{session_id}")).status_code == 202

    session_id, close = asyncio.run(closed_while_running(server, delete))
    assert close == (1001, "cancelled by request")
    assert final_state(server, session_id) == "cancelled"

    async def sigterm(session_id: str) -> None:
        server.signal(signal.SIGTERM)

    session_id, close = asyncio.run(closed_while_running(server, sigterm))
    assert close == (1001, "drain timeout reached")
    assert server.wait(30) == 0
    assert final_state(server, session_id) == "cancelled"
    lines = [line["message"] for line in json_lines(server) if line["session_id"] == session_id]
    assert any(m.endswith("(drain timeout reached)") for m in lines), lines


def test_running_pipeline_timed_out(server_for: ServerFactory) -> None:
    server = start_pipecat_server(server_for, SESSION_TIMEOUT_SECS="2")

    async def nothing(session_id: str) -> None:
        pass

    session_id, close = asyncio.run(closed_while_running(server, nothing))
    assert close == (4408, "session exceeded its limit of 2s")
    assert final_state(server, session_id) == "timed_out"
    stop_and_check_drain(server)


def test_pipecat_transports_run_unchanged_in_a_worker(server_for: ServerFactory) -> None:
    """SESSION_ISOLATION=process: Pipecat's FastAPIWebsocketTransport runs on the worker's
    relayed WebSocket as it does inline, for a plain client (its first frame peeked by the
    server, then relayed) and a phone provider's stream; Pipecat's lines, written by the
    worker, carry the session id."""
    server = start_pipecat_server(server_for, SESSION_ISOLATION="process", PREWARM_WORKERS="1")

    def idle_worker() -> bool:
        # A worker imports Pipecat before it takes a session: seconds (more for 1.0).
        return value(scrape(server.url), "botdock_workers", state="idle") >= 1

    calls = [(EXOTEL, "exotel")]
    if PLAIN_WEBSOCKET:
        wait_for(idle_worker, timeout=120)
        report, echoed = asyncio.run(protobuf_session(server))
        assert echoed == {
            "echo": {"label": "rtvi-ai", "type": "client-ready", "id": "1", "data": {}}
        }
        assert report["transport_type"] == "websocket"
        assert report["transport"] == (
            "pipecat.transports.websocket.fastapi.FastAPIWebsocketTransport"
        )
        session_id = report["session_id"]
        wait_for(lambda: finished(server, session_id) is not None)
        assert finished(server, session_id) == "completed"
        check_pipecat_lines_carry_the_session_id(server, session_id)
    for messages, provider in calls:
        wait_for(idle_worker, timeout=120)
        report = asyncio.run(session(server, "/ws", messages))
        assert report["transport"] == (
            "pipecat.transports.websocket.fastapi.FastAPIWebsocketTransport"
        )
        if PLAIN_WEBSOCKET:
            assert report["transport_type"] == provider
        call_id = report["session_id"]
        wait_for(lambda: finished(server, call_id) is not None)  # noqa: B023 - awaited here
        assert finished(server, call_id) == "completed"
    # A Pipecat session leaves no thread or task behind: its worker takes the next session.
    samples = scrape(server.url)
    assert value(samples, "botdock_workers_retired_total", reason="unclean") == 0
    assert value(samples, "botdock_workers_retired_total", reason="died") == 0
    stop_and_check_drain(server)
