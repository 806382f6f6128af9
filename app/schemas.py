"""Response shapes, written once: the routes answer these models and the OpenAPI schema is
made from them. Attributes are snake_case; the JSON is camelCase (by alias), as Pipecat's
clients expect."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.config import SessionMode
from app.errors import ErrorBody
from app.sessions import Session, SessionKind, SessionState


class Answer(BaseModel):
    """Base of every answer: camelCase JSON, built from trusted values (no validation)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    def response(self, status: int = 200) -> Response:
        """The answer as a JSON response, fields that are None left out."""
        return Response(
            self.model_dump_json(exclude_none=True),
            status_code=status,
            media_type="application/json",
        )


class Status(Answer):
    status: Literal["ok", "ready"]


class ProcessFigures(Answer):
    """Resource figures of the serving process, for soak tests and dashboards."""

    rss_bytes: int
    open_fds: int
    threads: int
    asyncio_tasks: int


class LoopFigures(Answer):
    """The server's event loop: how late it runs what is due (docs/observability.md)."""

    lag_secs: float
    max_lag_secs: float = Field(description="The largest lag of the last window_secs.")
    window_secs: float
    workers_max_lag_secs: float | None = Field(
        default=None,
        description="SESSION_ISOLATION=process: the largest lag any live worker's own loop "
        "reported in the last window_secs (null inline). Not part of /readyz.",
    )


class Health(Answer):
    status: Literal["ok", "full", "draining"]
    mode: SessionMode
    active_sessions: int
    max_sessions: int
    draining: bool
    version: str
    process: ProcessFigures
    event_loop: LoopFigures
    telephony: dict[str, Literal["authenticated", "unauthenticated"]] = Field(
        default_factory=dict,
        description="Each phone provider's webhook: signatures checked, or not (no credentials).",
    )


class WebSocketStart(Answer):
    """`POST /start` for a WebSocket session: exactly the connection parameters Pipecat's
    WebSocket transport accepts (it refuses any other key, and appends `?token=` itself)."""

    model_config = ConfigDict(extra="forbid")

    ws_url: str = Field(description="Where to connect: /ws?session_id=<the session's id>.")
    token: str = Field(
        description="The session's short-lived, single-use token: send it as ?token= on wsUrl "
        "(Pipecat's WebSocket transport does). SESSION_TOKEN_TTL_SECS."
    )


class DailyStart(Answer):
    """`POST /start` for a Daily session: what Pipecat's Daily transport reads (as Pipecat
    Cloud answers)."""

    model_config = ConfigDict(extra="forbid")

    daily_room: str = Field(description="The room URL.")
    daily_token: str | None = Field(
        default=None,
        description="The caller's participant token: for a room created here, or, with "
        "DAILY_API_KEY set, for a room the caller brought.",
    )


class IceServer(Answer):
    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class IceConfig(Answer):
    """The STUN/TURN servers the client should use: the service's own (`ICE_SERVERS`)."""

    ice_servers: list[IceServer]


class WebRTCRequestParams(Answer):
    """Where the SmallWebRTC client posts its offer (and PATCHes its ICE candidates): this
    session's offer URL, carrying the session's single-use token."""

    endpoint: str


class WebRTCStart(Answer):
    """`POST /start` for a SmallWebRTC session: what `@pipecat-ai/small-webrtc-transport`'s
    `connect()` takes as it is (it drops `sessionId` and posts its offer to the endpoint)."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    webrtc_request_params: WebRTCRequestParams = Field(description="Where to post the offer.")
    ice_config: IceConfig = Field(description="The ICE servers to use (ICE_SERVERS).")

    @classmethod
    def of(cls, session_id: str, offer_url: str, ice_servers: list[dict[str, Any]]) -> WebRTCStart:
        return cls(
            session_id=session_id,
            webrtc_request_params=WebRTCRequestParams(endpoint=offer_url),
            ice_config=IceConfig(ice_servers=[IceServer(**server) for server in ice_servers]),
        )


class OfferAnswer(BaseModel):
    """The SDP answer to a WebRTC offer, in the runner's shape (`pc_id` in snake_case, as the
    SmallWebRTC client reads it)."""

    sdp: str
    type: Literal["answer"]
    pc_id: str

    def response(self, status: int = 200) -> Response:
        return Response(self.model_dump_json(), status_code=status, media_type="application/json")


class CandidatesAnswer(Answer):
    status: Literal["success"]


class PlainStart(Answer):
    """`POST /start` for a plain session, which no client transport joins."""

    model_config = ConfigDict(extra="forbid")

    session_id: str


StartAnswer = WebSocketStart | DailyStart | WebRTCStart | PlainStart


class BotAnswer(Answer):
    """`POST /bot` answers an empty object when the bot returns."""

    model_config = ConfigDict(extra="forbid")


class WorkerFigures(Answer):
    """The worker process running a session (SESSION_ISOLATION=process)."""

    pid: int
    rss_bytes: int = Field(description="The worker's resident memory now.")
    cpu_secs: float = Field(description="CPU seconds the worker used since the session began.")
    loop_lag_secs: float = Field(
        description="The worker's event-loop lag in its last report (docs/observability.md)."
    )


class SessionInfo(Answer):
    session_id: str
    kind: SessionKind
    state: SessionState
    started_at: datetime
    age_secs: float
    worker: WorkerFigures | None = Field(
        default=None, description="On GET /sessions/{id}, with SESSION_ISOLATION=process."
    )

    @classmethod
    def of(cls, session: Session, worker: dict[str, Any] | None = None) -> SessionInfo:
        return cls.model_construct(
            session_id=session.id,
            kind=session.kind,
            state=session.state,
            started_at=session.started_at,
            age_secs=round(session.age_secs, 3),
            worker=None if worker is None else WorkerFigures.model_construct(**worker),
        )


class SessionList(Answer):
    sessions: list[SessionInfo]


class CancelAnswer(Answer):
    session_id: str
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
    403: "ALLOWED_ORIGINS is set and the browser's Origin is not in it.",
    500: "bot() raised an exception; the session failed.",
    501: "WebRTC needs Pipecat's WebRTC extra, which is not installed.",
    502: "Daily answered an error or garbage, or could not be reached.",
    503: "The service is draining, or the session was cancelled.",
    504: "The session reached its time limit, or Daily did not answer in time.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries with the error shape for the given statuses."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXTS[code]} for code in codes}
