"""What a caller may ask of a Daily room that the service creates for its session.

Checked by the start flow before any slot is taken or call made, so a bad request costs
nothing. The service owns a few properties: the room's and tokens' `exp` (a caller's may only
shorten it), the tokens' `room_name`, and `is_owner`, which the caller's token never has.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from app.exceptions import InvalidRequest

MAX_PROPERTY_KEYS = 50
MAX_PROPERTIES_BYTES = 8192


@dataclass(frozen=True)
class RoomOptions:
    """The caller's validated `dailyRoomProperties` and `dailyMeetingTokenProperties`;
    `caller_token` is False when nobody is there to receive a participant token."""

    room_properties: dict[str, Any] = field(default_factory=dict)
    token_properties: dict[str, Any] = field(default_factory=dict)
    caller_token: bool = True


def room_options(
    room_properties: dict[str, Any] | None,
    token_properties: dict[str, Any] | None,
    *,
    caller_token: bool = True,
) -> RoomOptions:
    room = dict(room_properties or {})
    token = dict(token_properties or {})
    for name, props in (("dailyRoomProperties", room), ("dailyMeetingTokenProperties", token)):
        _check_size(name, props)
        if "exp" in props:
            _check_exp(f"{name}.exp", props["exp"])
    if token.get("is_owner", False) is not False:
        raise InvalidRequest(
            "invalid_request",
            "dailyMeetingTokenProperties.is_owner must be false or absent: the caller gets a "
            "participant token, only the bot owns the room",
        )
    return RoomOptions(room, token, caller_token)


def _check_size(name: str, props: dict[str, Any]) -> None:
    if len(props) > MAX_PROPERTY_KEYS:
        raise InvalidRequest(
            "invalid_request",
            f"{name} has {len(props)} keys; at most {MAX_PROPERTY_KEYS} are allowed",
        )
    size = len(json.dumps(props, separators=(",", ":")).encode())
    if size > MAX_PROPERTIES_BYTES:
        raise InvalidRequest(
            "invalid_request",
            f"{name} is {size} bytes as JSON; at most {MAX_PROPERTIES_BYTES} are allowed",
        )


def _check_exp(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest("invalid_request", f"{where} must be a Unix time in seconds")
    if value <= time.time():
        raise InvalidRequest("invalid_request", f"{where} is in the past")
