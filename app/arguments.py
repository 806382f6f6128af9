"""Session arguments handed to `bot(args)`.

This is the module `bot.py` imports from. The classes and field names match Pipecat
Cloud's, so a bot written for Pipecat Cloud reads them unchanged:

- `PipecatSessionArguments`: a plain session started over HTTP (`POST /start`, `POST /bot`).
- `DailySessionArguments`: a session in a Daily room; `room_url` and the bot's `token`.
- `WebSocketSessionArguments`: a session on `WS /ws`; `websocket` is the FastAPI WebSocket,
  already accepted.

Every session has a `session_id` (the caller's `x-daily-session-id`, or a generated UUID4)
and a `body`: the caller's custom JSON object, `{}` when none was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import WebSocket

__all__ = [
    "DailySessionArguments",
    "PipecatSessionArguments",
    "SessionArguments",
    "WebSocketSessionArguments",
]


@dataclass
class SessionArguments:
    """Base class of every session's arguments."""

    session_id: str | None


@dataclass
class PipecatSessionArguments(SessionArguments):
    """A plain session: the bot gets only the caller's custom data."""

    body: Any = field(default_factory=dict)


@dataclass
class DailySessionArguments(SessionArguments):
    """A session in a Daily room. `token` is the bot's own meeting token: keep it secret."""

    room_url: str
    token: str = field(repr=False)
    body: Any = field(default_factory=dict)


@dataclass
class WebSocketSessionArguments(SessionArguments):
    """A session on a WebSocket the service has already accepted."""

    websocket: WebSocket
    body: Any = field(default_factory=dict)
