"""Which session kind a request starts under `SESSION_MODE`: never a silent fallback, a
request the mode does not serve gets an error that names the mode."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import SessionMode
from app.errors import ApiError
from app.sessions import SessionKind


@dataclass(frozen=True)
class Room:
    """A Daily room and the bot's token for it, as the caller sent them."""

    url: str
    token: str


def room_from(url: str | None, token: str | None, url_name: str, token_name: str) -> Room | None:
    if not url and not token:
        return None
    if not url or not token:
        missing = url_name if not url else token_name
        raise ApiError(
            400,
            "incomplete_room",
            f"a Daily room needs both {url_name} and {token_name}; {missing} is missing",
        )
    return Room(url, token)


def http_kind(mode: SessionMode, room: Room | None, create_room: bool, route: str) -> SessionKind:
    """The kind of session an HTTP start (`POST /start` or `POST /bot`) begins."""
    if mode is SessionMode.WEBSOCKET:
        if route == "/bot" or room is not None or create_room:
            raise ApiError(
                400,
                "mode_mismatch",
                "SESSION_MODE=websocket serves WebSocket sessions only: connect to /ws "
                "(POST /start without a room announces one)",
            )
        return SessionKind.WEBSOCKET
    if mode is SessionMode.PIPECAT:
        if room is not None or create_room:
            raise ApiError(
                400,
                "mode_mismatch",
                "SESSION_MODE=pipecat serves plain sessions only; this request asks for a "
                "Daily room",
            )
        return SessionKind.PIPECAT
    if mode is SessionMode.DAILY:
        return SessionKind.DAILY
    return SessionKind.DAILY if room is not None or create_room else SessionKind.PIPECAT


def check_websocket_allowed(mode: SessionMode) -> None:
    if mode in (SessionMode.PIPECAT, SessionMode.DAILY):
        raise ApiError(
            400,
            "mode_mismatch",
            f"SESSION_MODE={mode.value} does not serve WebSocket sessions",
        )
