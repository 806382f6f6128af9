"""`WS /ws`: WebSocket sessions, started here or announced by `POST /start`. `create_app`
registers `websocket_session` on the app itself (see there)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from app.auth import check_api_key, check_origin
from app.errors import ApiError, as_api_error
from app.exceptions import ServiceError
from app.logs import log_websocket_accepted, log_websocket_refused
from app.modes import Entry
from app.payloads import caller_session_id, decode_ws_body
from app.sessions import SessionState
from app.start_flow import StartAsk
from app.state import services
from app.ws_detect import detect_transport_type, peek_needed

# Close codes after the bot ends; refusals close with 4000 + the HTTP status of the error.
_CLOSE_CODES = {
    SessionState.COMPLETED: 1000,
    SessionState.FAILED: 1011,
    SessionState.TIMED_OUT: 4408,
    SessionState.CANCELLED: 1001,
}
_MAX_REASON_BYTES = 123


async def websocket_session(
    websocket: WebSocket,
    body: str | None = None,
    session_id: str | None = None,
    token: str | None = None,
) -> None:
    svc = services(websocket)
    try:
        check_origin(websocket)
        if session_id is None:  # an announced session's own token is its credential
            check_api_key(websocket)
        if session_id is not None and body is not None:
            raise ApiError(400, "bad_request", "send either 'body' or 'session_id', not both")
        data = {} if session_id is not None else decode_ws_body(body, svc.settings.max_body_bytes)
        started = await svc.flow.start_websocket(
            StartAsk(Entry.WEBSOCKET, body=data, session_id=caller_session_id(websocket)),
            websocket,
            lambda: _accept(websocket),
            claim=session_id,
            claim_token=token,
            detect=(lambda: detect_transport_type(websocket)) if peek_needed() else None,
        )
    except (ApiError, ServiceError) as exc:
        error = as_api_error(exc)
        await refuse(websocket, 4000 + error.status, error.detail)
        return
    if started is None or started.done is None:  # the handshake failed
        return
    session = started.session
    log_websocket_accepted(websocket.scope, session.id)
    closing: list[asyncio.Task[None]] = []

    def close_first(state: SessionState, reason: str) -> None:
        """The service ends the session: the client hears why before the bot is cancelled
        (whose transport may close the socket itself, with no reason)."""
        closing.append(asyncio.create_task(_close(websocket, _CLOSE_CODES[state], reason)))

    session.on_end = close_first
    state = await started.done
    session.on_end = None
    for task in closing:
        await task
    await _close(websocket, _CLOSE_CODES[state], session.end_reason or state.value)


async def _accept(websocket: WebSocket) -> bool:
    try:
        await websocket.accept()
    except Exception:
        return False
    return True


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Refuse a session: accept the handshake, then close at once with a code and a reason,
    which browsers (unlike a bare HTTP 4xx on the upgrade) can read."""
    with contextlib.suppress(Exception):
        await websocket.accept()
        await _close(websocket, code, reason)
    log_websocket_refused(websocket.scope, code)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if (
        websocket.application_state is WebSocketState.CONNECTED
        and websocket.client_state is WebSocketState.CONNECTED
    ):
        with contextlib.suppress(Exception):
            await websocket.close(code, _truncate(reason))


def _truncate(reason: str) -> str:
    data = reason.encode()
    if len(data) <= _MAX_REASON_BYTES:
        return reason
    return data[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
