"""Starting and listing sessions over HTTP: `POST /start`, `POST /bot`, `GET /sessions`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from app.arguments import DailySessionArguments, PipecatSessionArguments, SessionArguments
from app.auth import check_api_key, require_api_key
from app.daily import missing_key_error, room_for_session, room_options
from app.errors import ApiError, error_response
from app.modes import Room, http_kind, room_from
from app.payloads import (
    BOT_HEADER_PARAMETERS,
    StartRequest,
    parse_bot_headers,
    parse_start_request,
    read_json_object,
)
from app.schemas import (
    BotAnswer,
    CancelAnswer,
    SessionInfo,
    SessionList,
    StartAnswer,
    errors,
)
from app.sessions import MAX_SESSION_ID_LENGTH, Session, SessionKind, SessionState
from app.state import services

router = APIRouter(tags=["sessions"])
# Every route here needs the API key (when set). The two session starts check it first thing in
# their body instead of through a dependency: FastAPI's dependency solving costs them more
# than the rest of a no-op session start (see docs/benchmarks.md).
_AUTH = [Depends(require_api_key)]

_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _room_required(names: str) -> ApiError:
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
    response_model=StartAnswer,
    response_model_exclude_none=True,
    responses=errors(400, 401, 408, 413, 415, 422, 429, 502, 503, 504),
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
        await read_json_object(
            request, svc.settings.max_body_bytes, svc.settings.client_timeout_secs
        )
    )
    room = room_from(start_request.room_url, start_request.token, "room_url", "token")
    kind = http_kind(svc.settings.session_mode, room, start_request.create_daily_room, "/start")
    options = None
    if kind is SessionKind.DAILY and room is None:
        if svc.daily is None:
            if start_request.create_daily_room:
                raise missing_key_error()
            raise _room_required("room_url and token")
        options = room_options(
            start_request.daily_room_properties, start_request.daily_meeting_token_properties
        )
    session = svc.manager.reserve(kind, body=start_request.body)
    answer: dict[str, Any] = {"sessionId": session.id}
    if kind is SessionKind.WEBSOCKET:
        svc.manager.announce(session)
        ws_url = str(request.url_for("websocket_session")).replace("http", "ws", 1)
        answer["wsUrl"] = f"{ws_url}?session_id={session.id}"
    else:
        caller_token = None
        if options is not None:
            assert svc.daily is not None
            created = await room_for_session(svc.daily, svc.manager, session, options)
            room, caller_token = Room(created.url, created.bot_token), created.caller_token
        svc.manager.start(session, _arguments(session, room))
        if room is not None:
            answer["dailyRoom"] = room.url
        if caller_token is not None:
            answer["dailyToken"] = caller_token
    return JSONResponse(answer, status_code=201)


@router.post(
    "/bot",
    summary="Pipecat Cloud's platform call: runs the bot and answers when it returns",
    response_model=BotAnswer,
    responses=errors(400, 401, 408, 409, 413, 415, 422, 429, 500, 502, 503, 504),
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
    body = await read_json_object(
        request, svc.settings.max_body_bytes, svc.settings.client_timeout_secs
    )
    room = room_from(headers.room_url, headers.room_token, "x-daily-room-url", "x-daily-room-token")
    kind = http_kind(svc.settings.session_mode, room, False, "/bot")
    if kind is SessionKind.DAILY and room is None and svc.daily is None:
        raise _room_required("x-daily-room-url and x-daily-room-token")
    session = svc.manager.reserve(
        kind, session_id=headers.session_id, body=body, max_secs=headers.max_session_seconds
    )
    if kind is SessionKind.DAILY and room is None:
        assert svc.daily is not None
        # Only the bot's token: /bot answers when the bot returns, too late for a caller's.
        options = room_options(None, None, caller_token=False)
        created = await room_for_session(svc.daily, svc.manager, session, options)
        room = Room(created.url, created.bot_token)
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


@router.get(
    "/sessions",
    summary="Active sessions",
    response_model=SessionList,
    responses=errors(401),
    dependencies=_AUTH,
)
async def list_sessions(request: Request) -> JSONResponse:
    return JSONResponse({"sessions": [s.describe() for s in services(request).manager.sessions()]})


_SESSION_ID = Annotated[str, Path(max_length=MAX_SESSION_ID_LENGTH)]


@router.get(
    "/sessions/{session_id}",
    summary="One active session",
    response_model=SessionInfo,
    responses=errors(401, 404, 422),
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
    response_model=CancelAnswer,
    responses=errors(401, 404, 422),
    dependencies=_AUTH,
)
async def cancel_session(request: Request, session_id: _SESSION_ID) -> JSONResponse:
    session = services(request).manager.cancel(session_id)
    return JSONResponse({"sessionId": session.id, "state": "cancelling"}, status_code=202)
