"""Which session kind a start begins under `SESSION_MODE`: never a silent fallback, a request
the mode does not serve gets an error that names the mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.config import SessionMode
from app.exceptions import BadRequest
from app.sessions import SessionKind


class Entry(StrEnum):
    """Where a session start comes from."""

    START = "start"  # POST /start: answers at once
    BOT = "bot"  # POST /bot, Pipecat Cloud's call: answers when the bot returns
    WEBSOCKET = "websocket"  # WS /ws
    WEBRTC = "webrtc"  # a WebRTC offer (POST /api/offer), or /start and /bot asking for one
    PHONE = "phone"  # a phone provider's webhook: a WebSocket session announced for its stream


class Transport(StrEnum):
    """The `transport` a start request names, as Pipecat's runner reads it."""

    WEBSOCKET = "websocket"
    DAILY = "daily"
    WEBRTC = "webrtc"


TRANSPORTS = tuple(t.value for t in Transport)


@dataclass(frozen=True)
class Room:
    """A Daily room and the bot's token for it, as the caller sent them."""

    url: str
    token: str = field(repr=False)


def room_from(url: str | None, token: str | None, url_name: str, token_name: str) -> Room | None:
    """The caller's room, if any; half a room is an error naming the missing field."""
    if not url and not token:
        return None
    if not url or not token:
        missing = url_name if not url else token_name
        raise BadRequest(
            "incomplete_room",
            f"a Daily room needs both {url_name} and {token_name}; {missing} is missing",
        )
    return Room(url, token)


def session_kind(
    mode: SessionMode, entry: Entry, wants_room: bool, transport: Transport | None = None
) -> SessionKind:
    """The kind of session a start begins. `wants_room`: the caller brought a Daily room or
    asked for one to be created. `transport`: the kind the start request named, if any."""
    if entry is Entry.WEBRTC:
        if mode is not SessionMode.AUTO:
            raise BadRequest(
                "mode_mismatch",
                f"SESSION_MODE={mode.value} does not serve WebRTC sessions (SESSION_MODE=auto "
                "does)",
            )
        if wants_room:
            raise BadRequest("mode_mismatch", "a WebRTC session takes no Daily room")
        return SessionKind.WEBRTC
    if transport is not None:
        return _named_kind(mode, transport, wants_room)
    if entry in (Entry.WEBSOCKET, Entry.PHONE):
        if mode in (SessionMode.PIPECAT, SessionMode.DAILY):
            raise BadRequest(
                "mode_mismatch", f"SESSION_MODE={mode.value} does not serve WebSocket sessions"
            )
        return SessionKind.WEBSOCKET
    if mode is SessionMode.WEBSOCKET:
        if entry is Entry.BOT or wants_room:
            raise _websocket_only()
        return SessionKind.WEBSOCKET
    if mode is SessionMode.PIPECAT:
        if wants_room:
            raise _plain_only()
        return SessionKind.PIPECAT
    if mode is SessionMode.DAILY:
        return SessionKind.DAILY
    return SessionKind.DAILY if wants_room else SessionKind.PIPECAT


def _named_kind(mode: SessionMode, transport: Transport, wants_room: bool) -> SessionKind:
    """The kind a start request's `transport` asks for; a kind the mode does not serve gets
    the mode's own error."""
    if transport is Transport.WEBRTC:  # announced, its offer runs it: the WebRTC entry's rules
        return session_kind(mode, Entry.WEBRTC, wants_room)
    if transport is Transport.WEBSOCKET:
        if wants_room:
            raise BadRequest(
                "transport_mismatch",
                'transport "websocket" takes no Daily room: drop room_url, token and '
                'createDailyRoom, or send transport "daily"',
            )
        if mode in (SessionMode.PIPECAT, SessionMode.DAILY):
            raise BadRequest(
                "mode_mismatch", f"SESSION_MODE={mode.value} does not serve WebSocket sessions"
            )
        return SessionKind.WEBSOCKET
    if mode is SessionMode.WEBSOCKET:
        raise _websocket_only()
    if mode is SessionMode.PIPECAT:
        raise _plain_only()
    return SessionKind.DAILY


def _websocket_only() -> BadRequest:
    return BadRequest(
        "mode_mismatch",
        "SESSION_MODE=websocket serves WebSocket sessions only: connect to /ws "
        "(POST /start without a room announces one)",
    )


def _plain_only() -> BadRequest:
    return BadRequest(
        "mode_mismatch",
        "SESSION_MODE=pipecat serves plain sessions only; this request asks for a Daily room",
    )
