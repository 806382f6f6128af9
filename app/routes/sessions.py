"""Starting and listing sessions over HTTP: `POST /start`, `POST /bot`, `GET /sessions`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from app.auth import check_api_key, require_api_key
from app.errors import error_response
from app.exceptions import NotFound
from app.modes import Entry, Transport, room_from
from app.payloads import (
    BOT_HEADER_PARAMETERS,
    StartRequest,
    header,
    parse_bot_headers,
    parse_start_request,
    read_json_object,
)
from app.routes.request_route import RequestRoute
from app.schemas import (
    BotAnswer,
    CancelAnswer,
    DailyStart,
    PlainStart,
    SessionInfo,
    SessionList,
    StartAnswer,
    WebRTCStart,
    WebSocketStart,
    errors,
)
from app.sessions import MAX_SESSION_ID_LENGTH, SessionState
from app.start_flow import StartAsk
from app.state import services

# POST /start and POST /bot take the request and return a response: RequestRoute serves them
# without FastAPI's per-request handler, which has nothing to do for them.
router = APIRouter(tags=["sessions"], route_class=RequestRoute)
# Every route here needs the API key (when set). The two session starts check it first thing in
# their body instead of through a dependency: FastAPI's dependency solving costs them more
# than the rest of a no-op session start (see docs/benchmarks.md).
_AUTH = [Depends(require_api_key)]

_JSON_OBJECT = {"type": "object", "additionalProperties": True}
# The session id travels in headers: Pipecat's client hands the whole answer body to its
# transport, and the WebSocket transport refuses any key but wsUrl and token.
_STARTED_HEADERS = {
    "X-Session-Id": {"description": "The session's id.", "schema": {"type": "string"}},
    "Location": {
        "description": "The session's resource: /sessions/{id}.",
        "schema": {"type": "string"},
    },
}


@router.post(
    "/start",
    status_code=201,
    summary="Start a session and return at once (Pipecat's start request)",
    response_model=StartAnswer,
    response_model_exclude_none=True,
    responses={
        201: {"description": "Started or announced", "headers": _STARTED_HEADERS},
        **errors(400, 401, 408, 413, 415, 422, 429, 501, 502, 503, 504),
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": StartRequest.model_json_schema()}},
        }
    },
)
async def start(request: Request) -> Response:
    check_api_key(request)
    svc = services(request)
    data = await read_json_object(
        request, svc.settings.max_body_bytes, svc.settings.client_timeout_secs
    )
    parsed = parse_start_request(data)
    transport = None if parsed.transport is None else Transport(parsed.transport)
    ask = StartAsk(
        Entry.START,
        webrtc=transport is Transport.WEBRTC,
        body=parsed.body,
        room=room_from(parsed.room_url, parsed.token, "room_url", "token"),
        create_room=parsed.create_daily_room,
        room_properties=parsed.daily_room_properties,
        token_properties=parsed.daily_meeting_token_properties,
        transport=transport,
    )
    started = await svc.flow.start(ask)
    session = started.session
    answer: StartAnswer
    if ask.webrtc:  # announced: the caller's SmallWebRTC client posts its offer to run it
        offer = request.url_for("session_offer", session_id=session.id)
        offer_url = f"{offer}?{urlencode({'token': started.claim_token})}"
        answer = WebRTCStart.of(session.id, offer_url, svc.settings.ice_servers)
    elif started.claim_token is not None:  # announced: the caller connects to /ws to run it
        base = str(request.url_for("websocket_session")).replace("http", "ws", 1)
        ws_url = f"{base}?{urlencode({'session_id': session.id})}"
        answer = WebSocketStart(ws_url=ws_url, token=started.claim_token)
    elif started.room is not None:
        answer = DailyStart(daily_room=started.room.url, daily_token=started.caller_token)
    else:
        answer = PlainStart(session_id=session.id)
    response = answer.response(201)
    response.headers["X-Session-Id"] = session.id
    response.headers["Location"] = f"/sessions/{quote(session.id, safe='')}"
    return response


@router.post(
    "/bot",
    summary="Pipecat Cloud's platform call: runs the bot and answers when it returns",
    response_model=BotAnswer,
    responses=errors(400, 401, 408, 409, 413, 415, 422, 429, 500, 501, 502, 503, 504),
    openapi_extra={
        "parameters": BOT_HEADER_PARAMETERS,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _JSON_OBJECT}},
        },
    },
)
async def bot(request: Request) -> Response:
    check_api_key(request)
    headers = parse_bot_headers(request)
    svc = services(request)
    body = await read_json_object(
        request, svc.settings.max_body_bytes, svc.settings.client_timeout_secs
    )
    ask = StartAsk(
        Entry.BOT,
        body=body,
        session_id=headers.session_id,
        max_secs=headers.max_session_seconds,
        room=room_from(
            headers.room_url, headers.room_token, "x-daily-room-url", "x-daily-room-token"
        ),
        room_fields="x-daily-room-url and x-daily-room-token",
        # Pipecat Cloud's WebRTC call: the session waits for its offer (POST /api/offer).
        webrtc=header(request, b"x-daily-transport-type") == "webrtc",
    )
    started = await svc.flow.start(ask)
    session = started.session
    state = await started.done if started.done is not None else SessionState.PENDING
    if state is SessionState.COMPLETED:
        return _EMPTY.response()
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


_EMPTY = BotAnswer()


@router.get(
    "/sessions",
    summary="Active sessions",
    response_model=SessionList,
    responses=errors(401),
    dependencies=_AUTH,
)
async def list_sessions(request: Request) -> Response:
    sessions = [SessionInfo.of(s) for s in services(request).manager.sessions()]
    return SessionList.model_construct(sessions=sessions).response()


_SESSION_ID = Annotated[str, Path(max_length=MAX_SESSION_ID_LENGTH)]


@router.get(
    "/sessions/{session_id:path}",
    summary="One active session",
    response_model=SessionInfo,
    responses=errors(401, 404, 422),
    dependencies=_AUTH,
)
async def get_session(request: Request, session_id: _SESSION_ID) -> Response:
    svc = services(request)
    session = svc.manager.get(session_id)
    if session is None:
        raise NotFound("unknown_session", f"no active session {session_id}")
    worker = svc.workers.figures(session.id) if svc.workers is not None else None
    return SessionInfo.of(session, worker).response()


@router.delete(
    "/sessions/{session_id:path}",
    status_code=202,
    summary="Cancel a session; it ends as cancelled",
    response_model=CancelAnswer,
    responses=errors(401, 404, 422),
    dependencies=_AUTH,
)
async def cancel_session(request: Request, session_id: _SESSION_ID) -> Response:
    session = services(request).manager.cancel(session_id)
    return CancelAnswer(session_id=session.id, state="cancelling").response(202)
