"""A phone call's media stream on `/ws/phone/{call id}/{token}`: before the bot runs, the
service reads the stream's handshake (up to its `start` event, within
`PHONE_START_TIMEOUT_SECS`), checks it is the call the webhook answered, and builds the bot's
`call_data` from it. Every message read stays the bot's: the socket's ASGI `receive` replays
them first (as `app.ws_detect` does), so a bot that parses the handshake itself (Pipecat 1.0's
`parse_telephony_websocket`) reads it as the provider sent it.

`call_data`'s type, with Pipecat and without, is `app.telephony.call_data`'s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.telephony.call_data import typed
from app.telephony.providers import Provider

Message = MutableMapping[str, Any]
MAX_HANDSHAKE_MESSAGES = 3  # Twilio, Telnyx, Exotel: `connected`, then `start`; Plivo: `start`


class StreamRefused(Exception):
    """The stream cannot start this call's session; `close_code` says why to the provider."""

    def __init__(self, close_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.close_code = close_code
        self.code = code
        self.detail = detail


async def read_handshake(
    websocket: Any, provider: Provider, call_id: str, timeout_secs: float
) -> tuple[dict[str, Any], list[Message]]:
    """The `start` event of an accepted socket, and every ASGI message read to get it (to
    replay). Raises `StreamRefused`: 4408 when no `start` came in time, 4400 for a message
    that is not the provider's, 4403 for another call's stream."""
    receive: Callable[[], Awaitable[Message]] = websocket._receive
    read: list[Message] = []
    try:
        async with asyncio.timeout(timeout_secs):
            while len(read) < MAX_HANDSHAKE_MESSAGES:
                message = await receive()
                read.append(message)
                event = _event(message, provider)
                if event.get("event") == "start":
                    _check_call(event, provider, call_id)
                    return event, read
    except TimeoutError:
        raise StreamRefused(
            4408,
            "no_start_event",
            f"no {provider.name} start event within {timeout_secs:g}s",
        ) from None
    raise StreamRefused(
        4400,
        "malformed_stream",
        f"no start event in the first {MAX_HANDSHAKE_MESSAGES} {provider.name} messages",
    )


def replay(websocket: Any, messages: list[Message]) -> None:
    """Hand `messages` to the socket's next receives, then its own receive again."""
    receive = websocket._receive
    pending = list(messages)

    async def replaying() -> Message:
        if pending:
            message = pending.pop(0)
            if not pending:
                websocket._receive = receive
            return message
        websocket._receive = receive
        following: Message = await receive()
        return following

    if pending:
        websocket._receive = replaying


def _event(message: Message, provider: Provider) -> dict[str, Any]:
    if message.get("type") == "websocket.disconnect":
        raise StreamRefused(4400, "stream_closed", "the stream closed before its start event")
    text = message.get("text")
    if not isinstance(text, str):
        raise StreamRefused(
            4400, "malformed_stream", f"a {provider.name} stream opens with JSON text messages"
        )
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise StreamRefused(
            4400,
            "malformed_stream",
            f"not a {provider.name} media-stream message (a JSON object with an event)",
        )
    return event


def _at(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _check_call(event: dict[str, Any], provider: Provider, call_id: str) -> None:
    stream_call = _at(event, provider.stream_call_id)
    stream_id = _at(event, provider.stream_id)
    if not isinstance(stream_call, str) or not isinstance(stream_id, str) or not stream_id:
        raise StreamRefused(
            4400,
            "malformed_stream",
            f"the {provider.name} start event lacks {'.'.join(provider.stream_call_id)} "
            f"or {'.'.join(provider.stream_id)}",
        )
    if stream_call != call_id:
        raise StreamRefused(
            4403,
            "foreign_stream",
            "the stream's start event names another call than the one this URL was answered for",
        )


def call_data(provider: Provider, start: dict[str, Any], call: dict[str, Any]) -> Any:
    """The bot's `call_data`, in the keys Pipecat's `parse_telephony_websocket` gives for this
    provider, completed with what the webhook said (`from`, `to`) and the `provider`."""
    found = start.get("start")
    inner: dict[str, Any] = found if isinstance(found, dict) else {}
    data: dict[str, Any] = {
        "provider": provider.name,
        "stream_id": _at(start, provider.stream_id),
        "call_id": _at(start, provider.stream_call_id),
        "from": call.get("from"),
        "to": call.get("to"),
        "body": {},
    }
    if provider.name == "twilio":
        custom = inner.get("customParameters")
        data["body"] = dict(custom) if isinstance(custom, dict) else {}
    elif provider.name == "telnyx":
        media_format = inner.get("media_format")
        data["outbound_encoding"] = (
            media_format.get("encoding") if isinstance(media_format, dict) else None
        )
        data["from"] = inner.get("from") or data["from"]
        data["to"] = inner.get("to") or data["to"]
    elif provider.name == "exotel":
        data["account_sid"] = inner.get("account_sid")
        data["from"] = inner.get("from") or data["from"]
        data["to"] = inner.get("to") or data["to"]
        data["custom_parameters"] = inner.get("custom_parameters", "")
    return typed(provider.name, data)
