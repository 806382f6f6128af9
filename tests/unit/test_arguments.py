import dataclasses
from typing import Any

import pytest

from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    SmallWebRTCSessionArguments,
    WebSocketSessionArguments,
)

# The fields every class has (Pipecat's `RunnerArguments`), with a new session's values.
COMMON: dict[str, Any] = {
    "session_id": None,
    "body": {},
    "handle_sigint": False,
    "handle_sigterm": False,
    "pipeline_idle_timeout_secs": 300,
    "call_data": None,
    "cli_args": None,
    "file_storage": None,
}
# Each class, with the fields it adds and the arguments that fill the required ones.
CLASSES: list[tuple[type[SessionArguments], list[str], dict[str, Any]]] = [
    (PipecatSessionArguments, [], {}),
    (DailySessionArguments, ["room_url", "token"], {"room_url": "https://example.daily.co/r"}),
    (WebSocketSessionArguments, ["websocket", "transport_type"], {"websocket": object()}),
    (SmallWebRTCSessionArguments, ["webrtc_connection"], {"webrtc_connection": object()}),
]
IDS = [cls.__name__ for cls, _, _ in CLASSES]


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(("cls", "own", "required"), CLASSES, ids=IDS)
def test_each_class_has_pipecats_fields(
    cls: type[SessionArguments], own: list[str], required: dict[str, Any]
) -> None:
    assert issubclass(cls, SessionArguments)
    assert field_names(cls) == set(COMMON) | set(own)


@pytest.mark.parametrize(("cls", "own", "required"), CLASSES, ids=IDS)
def test_defaults_are_pipecats(
    cls: type[SessionArguments], own: list[str], required: dict[str, Any]
) -> None:
    args = cls(**required)
    for name, default in COMMON.items():
        assert getattr(args, name) == default, name
    assert args.body is not cls(**required).body  # a fresh {} per session
    if isinstance(args, DailySessionArguments):
        assert args.token is None
    if isinstance(args, WebSocketSessionArguments):
        assert args.transport_type is None  # Pipecat detects a telephony provider


def test_constructed_with_keywords_as_pipecat_cloud_does() -> None:
    websocket = object()
    args = WebSocketSessionArguments(session_id="s", websocket=websocket, body={"a": 1})  # type: ignore[arg-type]
    assert (args.session_id, args.websocket, args.body) == ("s", websocket, {"a": 1})
    daily = DailySessionArguments(session_id="d", room_url="https://x.daily.co/r", token="t")
    assert (daily.session_id, daily.room_url, daily.token, daily.body) == (
        "d",
        "https://x.daily.co/r",
        "t",
        {},
    )


def test_signal_and_idle_fields_are_not_constructor_arguments() -> None:
    # botdock owns the signals: a bot's PipelineRunner must never install handlers.
    for name in ("handle_sigint", "handle_sigterm", "pipeline_idle_timeout_secs"):
        with pytest.raises(TypeError):
            PipecatSessionArguments(**{name: True})  # type: ignore[arg-type]


def test_daily_token_is_kept_out_of_repr() -> None:
    args = DailySessionArguments(
        session_id="s", room_url="https://example.daily.co/room", token="secret-token"
    )
    assert "secret-token" not in repr(args)
    assert args.token == "secret-token"
