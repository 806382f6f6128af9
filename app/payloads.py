"""Parsing what callers send: JSON bodies under a size limit, the start request, and the
WebSocket's base64 `body` query parameter. Every failure is an `ApiError` saying which."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import HTTPConnection

from app.errors import ApiError, describe_validation
from app.sessions import MAX_SESSION_ID_LENGTH

JSON_TYPES = ("application/json",)


class StartRequest(BaseModel):
    """`POST /start`, in the shape Pipecat's runner and client SDKs send."""

    # strict: `"createDailyRoom": 0` is an error, not False. A room is both fields or neither.
    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        strict=True,
        json_schema_extra={"dependentRequired": {"room_url": ["token"], "token": ["room_url"]}},
    )

    body: dict[str, Any] = Field(default_factory=dict, description="Custom data for the bot.")
    # The session kind to start, as Pipecat's runner reads it (app.modes.Transport); absent:
    # decided by SESSION_MODE and the room fields.
    transport: Literal["websocket", "daily", "webrtc"] | None = Field(
        default=None,
        description='"websocket": an announced WebSocket session (answers wsUrl and token); '
        '"daily": a Daily session; "webrtc": SmallWebRTC, which starts from POST /api/offer.',
    )
    create_daily_room: bool = Field(default=False, alias="createDailyRoom")
    daily_room_properties: dict[str, Any] | None = Field(default=None, alias="dailyRoomProperties")
    daily_meeting_token_properties: dict[str, Any] | None = Field(
        default=None, alias="dailyMeetingTokenProperties"
    )
    room_url: str | None = Field(default=None, min_length=1, max_length=2048)
    token: str | None = Field(default=None, min_length=1, max_length=8192, repr=False)


class BotHeaders(BaseModel):
    """`POST /bot`'s headers, as Pipecat Cloud sends them. Validated here, not as FastAPI
    `Header` parameters, whose dependency solving costs more than the rest of a no-op
    session start."""

    model_config = ConfigDict(frozen=True)

    session_id: str | None = Field(
        default=None, alias="x-daily-session-id", min_length=1, max_length=MAX_SESSION_ID_LENGTH
    )
    room_url: str | None = Field(default=None, alias="x-daily-room-url", max_length=2048)
    room_token: str | None = Field(
        default=None, alias="x-daily-room-token", max_length=8192, repr=False
    )
    # A floor of 1 s: a smaller limit cannot be meant (Pipecat Cloud allows 60 s and more).
    max_session_seconds: float | None = Field(
        default=None, alias="x-pcc-max-session-seconds", ge=1, allow_inf_nan=False
    )


_BOT_HEADER_NAMES = {
    str(f.alias).encode("latin-1"): str(f.alias) for f in BotHeaders.model_fields.values()
}
_NO_BOT_HEADERS = BotHeaders()
# The same headers documented in the OpenAPI schema, as `Header` parameters would be.
BOT_HEADER_PARAMETERS = [
    {"name": name, "in": "header", "required": False, "schema": schema}
    for name, schema in BotHeaders.model_json_schema()["properties"].items()
]


def header(conn: HTTPConnection, name: bytes) -> str | None:
    """The header `name` (lowercase), as `conn.headers.get(name)` gives it: its first value,
    or None. `Headers.get` raises and catches a KeyError for every absent header, and a
    session start looks for seven, most of them absent (docs/benchmarks.md)."""
    for key, value in conn.headers.raw:
        if key == name:
            return value.decode("latin-1")
    return None


def parse_bot_headers(request: Request) -> BotHeaders:
    present: dict[str, str] = {}
    for key, value in request.headers.raw:  # one pass for the four names
        name = _BOT_HEADER_NAMES.get(key)
        if name is not None and name not in present:  # the first value, as `header` gives
            present[name] = value.decode("latin-1")
    if not present:
        return _NO_BOT_HEADERS
    try:
        return BotHeaders.model_validate(present)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_validation(exc.errors())) from None


def caller_session_id(conn: HTTPConnection) -> str | None:
    """A WebSocket's `x-daily-session-id` (as Pipecat Cloud, or a phone platform, sends it):
    the session's id, checked as on `POST /bot`."""
    value = conn.headers.get("x-daily-session-id")
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_SESSION_ID_LENGTH:
        raise ApiError(
            422,
            "invalid_request",
            f"x-daily-session-id: must be 1 to {MAX_SESSION_ID_LENGTH} characters",
        )
    return value


async def read_json_object(request: Request, limit: int, timeout_secs: float) -> dict[str, Any]:
    """Read the request body (at most `limit` bytes, counted as it streams, so a chunked body
    is held to the same limit, within `timeout_secs`) and parse it as a JSON object. An empty
    body is `{}`."""
    declared = header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_secs):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"request body not received within {timeout_secs:g}s (CLIENT_TIMEOUT_SECS)",
        ) from None
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    content_type = (header(request, b"content-type") or "").split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {content_type or 'none'!r}",
        )
    return parse_json_object(raw, "request body")


MAX_JSON_INTEGER = 2**63  # larger integers lose precision in most JSON clients


class _JsonRefused(ValueError):
    """JSON that parses but that the service does not accept (duplicate keys, huge numbers)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRefused(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _JsonRefused(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        raise _JsonRefused(f"number {text[:40]}... is out of range")
    value = int(text)
    if not -MAX_JSON_INTEGER <= value < MAX_JSON_INTEGER:
        raise _JsonRefused(f"number {text} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise _JsonRefused(f"{name} is not valid JSON")


# One decoder for every document: `json.loads` with hooks builds a new one per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicate_keys,
    parse_float=_finite_float,
    parse_int=_bounded_int,
    parse_constant=_no_constants,
)


def parse_json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    """Strict JSON: no duplicate keys, no NaN/Infinity, numbers within 64-bit range."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw  # JSON is UTF-8 only
        if text.startswith("\ufeff"):  # refused as `json.loads` refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _DECODER.decode(text)
    except _JsonRefused as exc:
        raise ApiError(400, "invalid_json", f"{what} is not acceptable JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", f"{what} is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "invalid_json", f"{what} is malformed JSON: {exc.msg} at position {exc.pos}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"{what} is not acceptable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(
            422, "invalid_body", f"{what} must be a JSON object, got {_json_type(value)}"
        )
    return value


def parse_start_request(data: dict[str, Any]) -> StartRequest:
    try:
        return StartRequest.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_validation(exc.errors())) from None


def decode_ws_body(encoded: str | None, limit: int) -> dict[str, Any]:
    """Decode the WebSocket `body` query parameter: base64 (standard or URL-safe, padding
    optional) of a JSON object, as Pipecat Cloud sends it."""
    if encoded is None or encoded == "":
        return {}
    if len(encoded) > limit * 4 // 3 + 4:
        raise _too_large(limit)
    text = encoded.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400, "invalid_base64", "query parameter 'body' is not valid base64"
        ) from None
    return parse_json_object(raw, "decoded 'body'")


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "body_too_large", f"request body is larger than MAX_BODY_BYTES ({limit} bytes)"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
