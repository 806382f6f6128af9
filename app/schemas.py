"""Response shapes, declared so the OpenAPI schema says exactly what each route answers.
Field names are camelCase, as Pipecat's clients expect."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.errors import ErrorBody


class Status(BaseModel):
    status: Literal["ok", "ready"]


class ProcessFigures(BaseModel):
    """Resource figures of the serving process, for soak tests and dashboards."""

    rssBytes: int
    openFds: int
    threads: int
    asyncioTasks: int


class Health(BaseModel):
    status: Literal["ok", "full", "draining"]
    mode: Literal["auto", "pipecat", "daily", "websocket"]
    activeSessions: int
    maxSessions: int
    draining: bool
    version: str
    process: ProcessFigures


class StartAnswer(BaseModel):
    sessionId: str
    dailyRoom: str | None = Field(default=None, description="Daily sessions: the room URL.")
    dailyToken: str | None = Field(
        default=None, description="Daily rooms created here: the caller's participant token."
    )
    wsUrl: str | None = Field(
        default=None, description="WebSocket mode: where to connect to join this session."
    )


class BotAnswer(BaseModel):
    """`POST /bot` answers an empty object when the bot returns."""

    model_config = ConfigDict(extra="forbid")


class SessionInfo(BaseModel):
    sessionId: str
    kind: Literal["pipecat", "daily", "websocket"]
    state: Literal["pending", "running"]
    startedAt: str
    ageSecs: float


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class CancelAnswer(BaseModel):
    sessionId: str
    state: Literal["cancelling"]


_ERROR_TEXTS = {
    400: "Malformed JSON, a request the session mode does not serve, or an incomplete room.",
    401: "API_KEY is set and the request lacks it (Authorization: Bearer <key>).",
    404: "No active session with this id.",
    408: "The request body did not arrive within CLIENT_TIMEOUT_SECS.",
    409: "A session with this id is already active.",
    413: "Body larger than MAX_BODY_BYTES.",
    415: "Content-Type is not application/json.",
    422: "Valid JSON, but not an acceptable object, field or header.",
    429: "All MAX_SESSIONS slots are in use; see Retry-After.",
    500: "bot() raised an exception; the session failed.",
    502: "Daily answered an error or garbage, or could not be reached.",
    503: "The service is draining, or the session was cancelled.",
    504: "The session reached its time limit, or Daily did not answer in time.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries with the error shape for the given statuses."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXTS[code]} for code in codes}
