"""Starting and listing sessions over HTTP: `POST /start`, `POST /bot`, `GET /sessions`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from app.arguments import DailySessionArguments, PipecatSessionArguments, SessionArguments
from app.auth import check_api_key, require_api_key
from app.errors import ApiError, ErrorBody, error_response
from app.modes import Room, http_kind, room_from
from app.payloads import (
    BOT_HEADER_PARAMETERS,
    StartRequest,
    parse_bot_headers,
    parse_start_request,
    read_json_object,
)
from app.sessions import MAX_SESSION_ID_LENGTH, Session, SessionKind, SessionState
from app.state import Services, services

router = APIRouter(tags=["sessions"])
# Every route here needs the API key (when set). The two session starts check it first thing in
# their body instead of through a dependency: FastAPI's dependency solving costs them more
# than the rest of a no-op session start (see docs/benchmarks.md).
_AUTH = [Depends(require_api_key)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Invalid JSON, or a request the session mode does not serve.",
        401: "API_KEY is set and the request lacks it (Authorization: Bearer <key>).",
        413: "Body larger than MAX_BODY_BYTES.",
        415: "Content-Type is not application/json.",
        422: "Body is valid JSON but not an acceptable object.",
        429: "All MAX_SESSIONS slots are in use; see Retry-After.",
        503: "The service is draining.",
    }.items()
}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _room_required(svc: Services, names: str) -> ApiError:
    return ApiError(
        400,
        "daily_room_required",
        f"a Daily session needs a room: send {names}, or set DAILY_API_KEY so the service "
        "creates one",
    )


def _arguments(session: Session, room: Room | None) -> SessionArguments:
    if session.kind is SessionKind.DAILY:
        assert room is not None
        return DailySessionArguments(session.id, room.url, room.token, session.body)
    return PipecatSessionArguments(session.id, session.body)


@router.post(
    "/start",
    status_code=201,
    summary="Start a session and return at once (Pipecat's start request)",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": StartRequest.model_json_schema()}},
        }
    },
)
async def start(request: Request) -> JSONResponse:
    check_api_key(request)
    svc = services(request)
    start_request = parse_start_request(
        await read_json_object(request, svc.settings.max_body_bytes)
    )
    room = room_from(start_request.room_url, start_request.token, "room_url", "token")
    kind = http_kind(svc.settings.session_mode, room, start_request.create_daily_room, "/start")
    if kind is SessionKind.DAILY and room is None:
        raise _room_required(svc, "room_url and token")
    session = svc.manager.reserve(kind, body=start_request.body)
    answer: dict[str, Any] = {"sessionId": session.id}
    if kind is SessionKind.WEBSOCKET:
        svc.manager.announce(session)
        ws_url = str(request.url_for("websocket_session")).replace("http", "ws", 1)
        answer["wsUrl"] = f"{ws_url}?session_id={session.id}"
    else:
        svc.manager.start(session, _arguments(session, room))
        if room is not None:
            answer["dailyRoom"] = room.url
    return JSONResponse(answer, status_code=201)


@router.post(
    "/bot",
    summary="Pipecat Cloud's platform call: runs the bot and answers when it returns",
    responses={
        **_ERRORS,
        500: {"model": ErrorBody, "description": "bot() raised; the session failed."},
        504: {"model": ErrorBody, "description": "The session reached its time limit."},
    },
    openapi_extra={
        "parameters": BOT_HEADER_PARAMETERS,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _JSON_OBJECT}},
        },
    },
)
async def bot(request: Request) -> JSONResponse:
    check_api_key(request)
    headers = parse_bot_headers(request)
    svc = services(request)
    body = await read_json_object(request, svc.settings.max_body_bytes)
    room = room_from(headers.room_url, headers.room_token, "x-daily-room-url", "x-daily-room-token")
    kind = http_kind(svc.settings.session_mode, room, False, "/bot")
    if kind is SessionKind.DAILY and room is None:
        raise _room_required(svc, "x-daily-room-url and x-daily-room-token")
    session = svc.manager.reserve(
        kind, session_id=headers.session_id, body=body, max_secs=headers.max_session_seconds
    )
    state = await svc.manager.start(session, _arguments(session, room))
    if state is SessionState.COMPLETED:
        return JSONResponse({})
    if state is SessionState.FAILED:
        return error_response(
            500,
            "bot_failed",
            f"bot() raised an exception; session {session.id} failed "
            "(the service log has the traceback)",
        )
    if state is SessionState.TIMED_OUT:
        return error_response(
            504, "session_timed_out", f"session {session.id}: {session.end_reason}"
        )
    return error_response(
        503, "session_cancelled", f"session {session.id} was cancelled: {session.end_reason}"
    )


@router.get("/sessions", summary="Active sessions", dependencies=_AUTH)
async def list_sessions(request: Request) -> JSONResponse:
    return JSONResponse({"sessions": [s.describe() for s in services(request).manager.sessions()]})


_SESSION_ID = Annotated[str, Path(max_length=MAX_SESSION_ID_LENGTH)]
_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No active session with this id."}
}


@router.get(
    "/sessions/{session_id}",
    summary="One active session",
    responses=_UNKNOWN,
    dependencies=_AUTH,
)
async def get_session(request: Request, session_id: _SESSION_ID) -> JSONResponse:
    session = services(request).manager.get(session_id)
    if session is None:
        raise ApiError(404, "unknown_session", f"no active session {session_id}")
    return JSONResponse(session.describe())


@router.delete(
    "/sessions/{session_id}",
    status_code=202,
    summary="Cancel a session; it ends as cancelled",
    responses=_UNKNOWN,
    dependencies=_AUTH,
)
async def cancel_session(request: Request, session_id: _SESSION_ID) -> JSONResponse:
    session = services(request).manager.cancel(session_id)
    return JSONResponse({"sessionId": session.id, "state": "cancelling"}, status_code=202)
