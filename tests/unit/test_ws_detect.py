"""`app.ws_detect`: the first message of a `/ws` client tells a phone provider from a plain
client, and the bot still reads every message, the peeked one first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketState

from app.ws_detect import PLAIN, detect_transport_type, is_telephony, peek_needed

# The first messages of each phone provider's media stream, as Pipecat's
# `parse_telephony_websocket` recognises them.
TWILIO = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1"}},
]
TELNYX_CONNECTED = {"event": "connected", "version": "1.0.0"}
TELNYX_START = {"event": "start", "stream_id": "s1", "start": {"call_control_id": "v3:1"}}
PLIVO_START = {"event": "start", "start": {"streamId": "s1", "callId": "c1"}}
EXOTEL_START = {
    "event": "start",
    "start": {"stream_sid": "s1", "call_sid": "c1", "account_sid": "a1"},
}
EVAL_CONNECT = {"label": "rtvi-ai", "type": "client-message", "data": {"t": "eval-connect"}}


def text(value: Any) -> dict[str, Any]:
    return {
        "type": "websocket.receive",
        "text": value if isinstance(value, str) else json.dumps(value),
    }


def binary(value: bytes) -> dict[str, Any]:
    return {"type": "websocket.receive", "bytes": value}


@pytest.mark.parametrize(
    "message",
    [
        TWILIO[0],
        TWILIO[1],
        TELNYX_CONNECTED,
        TELNYX_START,
        PLIVO_START,
        EXOTEL_START,
        EVAL_CONNECT,
        {"event": "connected"},
    ],
)
def test_phone_providers_first_messages_are_telephony(message: dict[str, Any]) -> None:
    assert is_telephony(text(message))


@pytest.mark.parametrize(
    "message",
    [
        binary(b"\x08\x01\x12\x00"),  # Pipecat's JS client: protobuf frames
        binary(json.dumps(TWILIO[0]).encode()),  # JSON, but in a binary frame
        text({"label": "rtvi-ai", "type": "client-ready"}),
        text({"event": "media"}),
        text("hello"),
        text("[1, 2]"),
        text(""),
        {"type": "websocket.disconnect", "code": 1000},
    ],
)
def test_anything_else_is_a_plain_client(message: dict[str, Any]) -> None:
    assert not is_telephony(message)


def test_no_peek_without_pipecat() -> None:
    """The default suite runs without Pipecat: no one reads `transport_type`, no delay."""
    assert peek_needed() is False


class Socket:
    """A Starlette WebSocket over an in-memory ASGI connection, already accepted."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[MutableMapping[str, Any]] = []
        scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
        self.websocket = WebSocket(scope, self.incoming.get, self._send)
        self.incoming.put_nowait({"type": "websocket.connect"})

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    async def accept(self) -> WebSocket:
        await self.websocket.accept()
        return self.websocket

    def client_sends(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self.incoming.put_nowait(message)


async def detect(socket: Socket, wait_secs: float = 1.0) -> str | None:
    return await detect_transport_type(await socket.accept(), wait_secs)


def test_text_the_peeked_message_is_read_again_first() -> None:
    async def run() -> list[str]:
        socket = Socket()
        socket.client_sends(text("one"), text("two"))
        assert await detect(socket) == PLAIN
        socket.client_sends(text("three"), {"type": "websocket.disconnect", "code": 1000})
        return [message async for message in socket.websocket.iter_text()]

    assert asyncio.run(run()) == ["one", "two", "three"]


def test_binary_the_peeked_message_is_read_again_first() -> None:
    async def run() -> list[bytes]:
        socket = Socket()
        socket.client_sends(binary(b"\x01"), binary(b"\x02"))
        assert await detect(socket) == PLAIN
        first = await socket.websocket.receive_bytes()
        socket.client_sends(binary(b"\x03"), {"type": "websocket.disconnect", "code": 1000})
        return [first] + [message async for message in socket.websocket.iter_bytes()]

    assert asyncio.run(run()) == [b"\x01", b"\x02", b"\x03"]


def test_a_phone_stream_is_left_to_pipecat_with_every_message() -> None:
    async def run() -> list[str]:
        socket = Socket()
        socket.client_sends(*(text(message) for message in TWILIO))
        assert await detect(socket) is None
        stream = socket.websocket.iter_text()  # as `parse_telephony_websocket` reads
        return [await stream.__anext__(), await stream.__anext__()]

    assert [json.loads(message) for message in asyncio.run(run())] == TWILIO


def test_a_silent_client_is_plain_and_its_first_message_still_arrives() -> None:
    async def run() -> None:
        socket = Socket()
        assert await detect(socket, wait_secs=0.05) == PLAIN
        receive = socket.websocket.receive()  # the bot's first receive awaits the peek
        socket.client_sends(text("late"), binary(b"\x09"))
        assert (await receive)["text"] == "late"
        assert socket.websocket._receive == socket.incoming.get  # as before: no extra cost
        assert await socket.websocket.receive_bytes() == b"\x09"

    asyncio.run(run())


def test_a_client_gone_before_speaking_is_plain_and_the_bot_sees_the_disconnect() -> None:
    async def run() -> None:
        socket = Socket()
        socket.client_sends({"type": "websocket.disconnect", "code": 1001})
        assert await detect(socket) == PLAIN
        websocket = socket.websocket
        assert websocket.client_state is WebSocketState.CONNECTED
        assert (await websocket.receive())["type"] == "websocket.disconnect"
        assert websocket.client_state.name == "DISCONNECTED"

    asyncio.run(run())
