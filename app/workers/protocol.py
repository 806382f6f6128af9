"""The messages between the server and a worker: length-prefixed frames on a socketpair, read
and written with asyncio streams on both ends.

A frame is an 8-byte header (the JSON part's length, the binary part's length, big-endian),
a JSON object, then optional raw bytes (a WebSocket binary message travels as is, never
base64). JSON, not pickle: the server never unpickles what a worker, which runs the bot's
code, sends it.

Messages (`"t"` names each):

- server → worker: `start` (a session: its kind and arguments, a WebSocket's scope, a WebRTC
  session's offer and ICE servers), `ws` (the client's `websocket.receive` /
  `websocket.disconnect`), `offer` (a WebRTC renegotiation, with an `id`), `candidate` (a
  trickled ICE candidate; none: the end of them), `cancel`, `exit`;
- worker → server: `hello` (the bot module is imported, ready), `ws_send`, `ws_close` (the
  bot's `websocket.send` / `websocket.close`), `ack` (the bot took one relayed message: the
  server may send one more, see `WS_WINDOW`), `answer` (the peer's SDP answer to the first
  offer, `id` 0, or to the `offer` of that `id`; or the `error` that refused it), `done` (the
  session's outcome), `lag` (while a session runs, the worker's event-loop lag samples since
  the last, a few times a second).
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

HEADER = struct.Struct(">II")
NO_DATA = 0xFFFFFFFF  # the binary length of a frame without a binary part
MAX_JSON_BYTES = 1 << 20
MAX_DATA_BYTES = 256 << 20
# Relayed client messages the server may have in flight to a worker before the bot takes one:
# a bot that does not read stops the server from reading its client (TCP pushes back).
WS_WINDOW = 32

Message = dict[str, Any]


class ChannelClosed(Exception):
    """The other end went away (or sent something that is not a frame)."""


class Channel:
    """One end of a server-worker connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: Any) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_JSON_BYTES)
        return cls(reader, writer)

    async def send(self, message: Message, data: bytes | None = None) -> None:
        """Write one frame and wait while the other end's buffer is full (back-pressure)."""
        self.write(message, data)
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from None

    def write(self, message: Message, data: bytes | None = None) -> None:
        """Write one frame without waiting (one `write` call: frames never interleave)."""
        if self._writer.is_closing():
            raise ChannelClosed("the channel is closed")
        encoded = json.dumps(message, separators=(",", ":")).encode()
        size = NO_DATA if data is None else len(data)
        self._writer.write(HEADER.pack(len(encoded), size) + encoded + (data or b""))

    async def recv(self) -> tuple[Message, bytes | None]:
        try:
            head = await self._reader.readexactly(HEADER.size)
            json_size, data_size = HEADER.unpack(head)
            if json_size > MAX_JSON_BYTES or (data_size != NO_DATA and data_size > MAX_DATA_BYTES):
                raise ChannelClosed("frame too large")
            message = json.loads(await self._reader.readexactly(json_size))
            data = None if data_size == NO_DATA else await self._reader.readexactly(data_size)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise ChannelClosed(str(exc) or "end of stream") from None
        if not isinstance(message, dict) or not isinstance(message.get("t"), str):
            raise ChannelClosed("a frame without a message type")
        return message, data

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
