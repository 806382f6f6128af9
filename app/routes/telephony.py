"""Phone providers' webhooks (`GET|POST /telephony/{provider}`) and their calls' media streams
(`WS /ws/phone/{call id}/{token}`). docs/telephony.md says how to wire a number to them.

The webhook checks the provider's signature (when its credentials are set), announces a
WebSocket session whose id is the provider's call id, and answers the provider's markup with a
stream URL holding that session's single-use token in its path (Twilio drops a stream URL's
query; a path survives every provider). The stream claims the session with that token, the
service reads its handshake up to the `start` event, and the bot starts with `call_data`. When
the session ends the stream is closed and, with the provider's REST credentials, the call is
hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from loguru import logger
from starlette.websockets import WebSocketState

from app.errors import ApiError, as_api_error, error_response
from app.exceptions import AtCapacity, ServiceError, Unavailable
from app.logs import SessionLogContext, log_websocket_accepted, log_websocket_refused
from app.modes import Entry
from app.sessions import Session, SessionState
from app.start_flow import StartAsk
from app.state import Services, services
from app.telephony.call_data import leave_for_pipecat
from app.telephony.providers import CallDataError, SignatureError, WebhookRequest
from app.telephony.stream import StreamRefused, call_data, read_handshake, replay

router = APIRouter(tags=["telephony"])

STREAM_PATH = "/ws/phone"
_FORM = "application/x-www-form-urlencoded"
_CLOSE_CODES = {
    SessionState.COMPLETED: 1000,
    SessionState.FAILED: 1011,
    SessionState.TIMED_OUT: 4408,
    SessionState.CANCELLED: 1001,
}


@router.api_route(
    "/telephony/{provider}",
    methods=["GET", "POST"],
    include_in_schema=False,  # the providers' callback, not a client API (docs/telephony.md)
)
async def webhook(provider: str, request: Request) -> Response:
    svc = services(request)
    phone = svc.providers.get(provider)
    if phone is None:
        return error_response(
            404, "not_found", f"no phone provider {provider!r} (twilio, telnyx, plivo, exotel)"
        )
    body = await _body(request, svc.settings.max_body_bytes)
    query = parse_qs(request.url.query, keep_blank_values=True)
    form: dict[str, list[str]] = {}
    if request.method == "POST" and _FORM in request.headers.get("content-type", ""):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    base = public_base(request, svc)
    url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    incoming = WebhookRequest(
        request.method, url, {k.lower(): v for k, v in request.headers.items()}, body, form, query
    )
    auth = "authenticated" if phone.authenticated else "unauthenticated"
    try:
        phone.verify(incoming)
    except SignatureError as exc:
        logger.warning("{} webhook refused (403): {}", provider, exc)
        return error_response(403, "forbidden", f"not a signed {provider} request: {exc}")
    try:
        call = phone.call(incoming)
    except CallDataError as exc:
        logger.warning("{} webhook refused (400): {}", provider, exc)
        return error_response(400, "bad_request", str(exc))
    ask = StartAsk(
        Entry.PHONE,
        body={
            "provider": provider,
            "call_id": call.call_id,
            "from": call.from_number,
            "to": call.to_number,
            "params": call.params,
        },
        session_id=call.call_id,
    )
    try:
        started = await svc.flow.start(ask)
    except AtCapacity:
        busy = phone.busy()
        logger.warning(
            "{} call refused: at capacity ({}), answered {}",
            provider,
            auth,
            "busy" if busy is not None else "503",
        )
        if busy is not None:
            return Response(busy.body, media_type=busy.media_type)
        return error_response(
            503, "at_capacity", "every session slot is in use", {"Retry-After": "1"}
        )
    except Unavailable as exc:
        logger.warning("{} call refused: {} ({}), answered 503", provider, exc.code, auth)
        return error_response(503, exc.code, exc.detail, {"Retry-After": "1"})
    except ServiceError as exc:
        error = as_api_error(exc)
        logger.warning("{} call refused ({}): {}", provider, error.status, error.detail)
        return error_response(error.status, error.code, error.detail, error.headers)
    assert started.claim_token is not None
    stream_url = (
        _ws_scheme(base) + f"{STREAM_PATH}/{quote(call.call_id, safe=':')}/{started.claim_token}"
    )
    with SessionLogContext(started.session.id):
        logger.info("{} call answered ({}): waiting for its media stream", provider, auth)
    markup = phone.answer(stream_url, call)
    return Response(markup.body, media_type=markup.media_type)


async def phone_stream(websocket: WebSocket, session_id: str, token: str | None = None) -> None:
    """A call's media stream: claims the announced session with the token from its URL."""
    svc = services(websocket)
    if token is None:
        await _refuse(websocket, 4401, "the stream URL holds no token", session_id)
        return

    async def handshake(session: Session) -> tuple[str | None, Any]:
        provider = svc.providers.get(str(session.body.get("provider")))
        if provider is None:
            raise StreamRefused(4400, "not_a_call", "this session is not a phone call's")
        start, messages = await read_handshake(
            websocket, provider, session.id, svc.settings.phone_start_timeout_secs
        )
        replay(websocket, messages)
        data = call_data(provider, start, session.body)
        leave_for_pipecat(websocket, provider.name, data)
        return provider.name, data

    try:
        started = await svc.flow.start_websocket(
            StartAsk(Entry.WEBSOCKET),
            websocket,
            lambda: _accept(websocket),
            claim=session_id,
            claim_token=token,
            handshake=handshake,
        )
    except StreamRefused as exc:
        await _refuse(websocket, exc.close_code, exc.detail, session_id)
        return
    except (ApiError, ServiceError) as exc:
        error = as_api_error(exc)
        detail = error.detail
        if error.code == "session_token_expired":  # its own wording is for POST /start callers
            detail = (
                "the stream token expired: the stream came more than SESSION_TOKEN_TTL_SECS "
                f"({svc.settings.session_token_ttl_secs:g}s) after the webhook"
            )
        await _refuse(websocket, 4000 + error.status, detail, session_id)
        return
    if started is None or started.done is None:
        return
    session = started.session
    log_websocket_accepted(_redacted(websocket.scope, session_id), session.id)
    closing: list[asyncio.Task[None]] = []

    def close_first(state: SessionState, reason: str) -> None:
        closing.append(asyncio.create_task(_close(websocket, _CLOSE_CODES[state], reason)))

    session.on_end = close_first
    state = await started.done
    session.on_end = None
    for task in closing:
        await task
    await _close(websocket, _CLOSE_CODES[state], session.end_reason or state.value)
    if svc.hangup is not None:
        with SessionLogContext(session.id):
            await svc.hangup.hang_up(str(session.body.get("provider")), session.id)


def public_base(request: Request, svc: Services) -> str:
    """The URL this service is reached at by the provider: `PUBLIC_URL`, or, from a proxy in
    `TRUSTED_PROXIES`, its `X-Forwarded-Proto` and `X-Forwarded-Host`, else the request's own
    scheme and `Host`."""
    settings = svc.settings
    if settings.public_url:
        return settings.public_url
    scheme, host = request.url.scheme, request.headers.get("host", "")
    client = request.client.host if request.client else None
    if client is not None and client in settings.trusted_proxies:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        fwd_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme = proto if proto in ("http", "https") else scheme
        host = fwd_host or host
    return f"{scheme}://{host}"


def _ws_scheme(base: str) -> str:
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}"


async def _body(request: Request, limit: int) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise ApiError(413, "body_too_large", f"the webhook's body is over {limit} bytes")
    return data


def _redacted(scope: Any, session_id: str) -> dict[str, Any]:
    """The scope as logged: the stream token left out of its path."""
    return {**scope, "path": f"{STREAM_PATH}/{session_id}/[token]", "query_string": b""}


async def _accept(websocket: WebSocket) -> bool:
    try:
        await websocket.accept()
    except Exception:
        return False
    return True


async def _refuse(websocket: WebSocket, code: int, reason: str, session_id: str) -> None:
    with contextlib.suppress(Exception):
        if websocket.application_state is WebSocketState.CONNECTING:
            await websocket.accept()
        await _close(websocket, code, reason)
    logger.warning("phone stream for call {} refused ({}): {}", session_id, code, reason)
    log_websocket_refused(_redacted(websocket.scope, session_id), code)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if (
        websocket.application_state is WebSocketState.CONNECTED
        and websocket.client_state is WebSocketState.CONNECTED
    ):
        with contextlib.suppress(Exception):
            await websocket.close(code, reason.encode()[:120].decode(errors="ignore"))
