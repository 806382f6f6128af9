import dataclasses

from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    WebSocketSessionArguments,
)


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_argument_classes_have_pipecat_cloud_field_names() -> None:
    assert field_names(SessionArguments) == ["session_id"]
    assert field_names(PipecatSessionArguments) == ["session_id", "body"]
    assert field_names(DailySessionArguments) == ["session_id", "room_url", "token", "body"]
    assert field_names(WebSocketSessionArguments) == ["session_id", "websocket", "body"]


def test_every_argument_class_shares_the_base_class() -> None:
    for cls in (PipecatSessionArguments, DailySessionArguments, WebSocketSessionArguments):
        assert issubclass(cls, SessionArguments)


def test_body_defaults_to_an_empty_object_per_instance() -> None:
    first, second = PipecatSessionArguments("a"), PipecatSessionArguments("b")
    first.body["x"] = 1
    assert second.body == {}


def test_daily_token_is_kept_out_of_repr() -> None:
    args = DailySessionArguments("s", "https://example.daily.co/room", "secret-token")
    assert "secret-token" not in repr(args)
    assert args.token == "secret-token"
