"""Which Pipecat transport a client on `WS /ws` wants, told from what it sends first.

Pipecat's `create_transport()` builds a WebSocket session's transport from the arguments'
`transport_type`: `"websocket"` gives the plain `FastAPIWebsocketTransport` (Pipecat's own
clients, which speak protobuf), `None` makes it read the client's first messages as a phone
provider's handshake (`parse_telephony_websocket`). Pipecat's development runner keeps the
two apart with two routes; botdock has one, `/ws`, and tells them apart here.

**Rule.** After accepting the socket and before calling the bot, the service waits at most
`PEEK_SECS` for the client's first message. It is a phone provider's when it is a text frame
holding a JSON object that starts a media stream as Pipecat recognises one: `event`
`"connected"` or `"start"` (Twilio, Telnyx, Plivo and Exotel all open with one of these),
or a `start` object, or Pipecat's eval harness's `eval-connect` message. Then
`transport_type` stays `None` and Pipecat's own parser runs. Anything else (a binary frame,
other text, a disconnect), or nothing within `PEEK_SECS`, is a plain client: `transport_type`
is `"websocket"`. A plain client may well say nothing until the bot speaks; it then waits
`PEEK_SECS` for its bot, once.

**Nothing is lost.** The peeked message is not taken away from the bot: the socket's ASGI
`receive` is swapped for one that hands out the peeked message first and then puts the
original back, so `receive()`, `receive_text()`, `iter_bytes()`... on `args.websocket` (the
very same object, whose state Starlette keeps as usual) see every message the client sent,
in order. The peek is an ASGI receive of its own task; when nothing came within
`PEEK_SECS` that task is left running, and the bot's first receive awaits it, so nothing is
cancelled half-way either. After that first receive the socket is as it was: no cost per
message.

**Only when it matters.** The peek runs only when the installed Pipecat reads
`transport_type` (its `WebSocketRunnerArguments` has the field; 1.0's has not, and there
every WebSocket is a telephony one). Without Pipecat nobody reads the field, and a
session starts at once, as before.

This module imports no HTTP framework: it only reads and swaps the socket's `_receive`, the
ASGI callable Starlette's `WebSocket` keeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.arguments import WebSocketSessionArguments

__all__ = ["PEEK_SECS", "PLAIN", "detect_transport_type", "is_telephony", "peek_needed"]

PEEK_SECS = 2.0
PLAIN = "websocket"

Message = MutableMapping[str, Any]

_PHONE_EVENTS = frozenset({"connected", "start"})


def _reads_transport_type() -> bool:
    """Whether the installed Pipecat's `create_transport` honours `transport_type`."""
    return any(
        cls.__module__ == "pipecat.runner.types"
        and "transport_type" in getattr(cls, "__dataclass_fields__", {})
        for cls in WebSocketSessionArguments.__mro__
    )


_PEEK_NEEDED = _reads_transport_type()


def peek_needed() -> bool:
    return _PEEK_NEEDED


def is_telephony(message: Message) -> bool:
    """Whether an ASGI message is a phone provider's (or Pipecat's eval harness's) first."""
    if message.get("type") != "websocket.receive":
        return False
    text = message.get("text")
    if not isinstance(text, str):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if data.get("event") in _PHONE_EVENTS or isinstance(data.get("start"), dict):
        return True
    inner = data.get("data")
    return (
        data.get("type") == "client-message"
        and isinstance(inner, dict)
        and inner.get("t") == "eval-connect"
    )


async def detect_transport_type(websocket: Any, wait_secs: float | None = None) -> str | None:
    """`None` (let Pipecat parse a phone provider's handshake) or `"websocket"` (a plain
    client), from the first message of an accepted socket (waiting `wait_secs`, by default
    `PEEK_SECS`), which stays the bot's to read.
    """
    receive: Callable[[], Awaitable[Message]] = websocket._receive
    first: asyncio.Future[Message] = asyncio.ensure_future(receive())
    first.add_done_callback(_retrieve)

    async def replay() -> Message:
        websocket._receive = receive
        return await first

    websocket._receive = replay
    done, _ = await asyncio.wait({first}, timeout=PEEK_SECS if wait_secs is None else wait_secs)
    if not done or first.cancelled() or first.exception() is not None:
        return PLAIN
    return None if is_telephony(first.result()) else PLAIN


def _retrieve(future: asyncio.Future[Message]) -> None:
    """Mark an error of a peek nobody replayed as seen (the bot's receive raises it)."""
    if not future.cancelled():
        future.exception()
