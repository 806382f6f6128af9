"""The session-argument classes with the real Pipecat and Pipecat Cloud SDK installed:
subclasses of theirs, with every runner field, accepted by `create_transport`.

Runs against whichever Pipecat is installed (tests/pipecat/run_versions.sh runs it with the
locked release and with the oldest 1.x)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import pipecat
import pipecatcloud.agent as cloud
import pytest
from pipecat.runner import types as runner
from pipecat.runner.utils import create_transport

from app import arguments
from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    SmallWebRTCSessionArguments,
    WebSocketSessionArguments,
)
from tests.server import ROOT

# Ours, Pipecat's, Pipecat Cloud's, and the arguments each needs besides the common ones.
CLASSES: list[tuple[type, type, type, dict[str, Any]]] = [
    (PipecatSessionArguments, runner.RunnerArguments, cloud.PipecatSessionArguments, {}),
    (
        DailySessionArguments,
        runner.DailyRunnerArguments,
        cloud.DailySessionArguments,
        {"room_url": "https://example.daily.co/room", "token": "bot-token"},
    ),
    (
        WebSocketSessionArguments,
        runner.WebSocketRunnerArguments,
        cloud.WebSocketSessionArguments,
        {"websocket": object()},
    ),
    (
        SmallWebRTCSessionArguments,
        runner.SmallWebRTCRunnerArguments,
        cloud.SmallWebRTCSessionArguments,
        {"webrtc_connection": object()},
    ),
]
IDS = [ours.__name__ for ours, *_ in CLASSES]

# Every runner field a bot may read, with its value on a new session's arguments.
RUNNER_DEFAULTS = {
    "handle_sigint": False,
    "handle_sigterm": False,
    "pipeline_idle_timeout_secs": 300,
    "body": {},
    "call_data": None,
    "session_id": None,
    "cli_args": None,
    "file_storage": None,
}


def test_pipecat_is_what_the_run_asked_for() -> None:
    # run_versions.sh names the release it expects; a plain run takes the locked one.
    expected = os.environ.get("BOTDOCK_EXPECT_PIPECAT")
    if expected:
        assert pipecat.__version__.startswith(expected)
    assert arguments._runner is runner
    assert arguments._cloud is cloud


@pytest.mark.parametrize(("ours", "theirs", "cloud_class", "extra"), CLASSES, ids=IDS)
def test_each_class_is_pipecats_and_pipecat_clouds(
    ours: type, theirs: type, cloud_class: type, extra: dict[str, Any]
) -> None:
    args = ours(session_id="s-1", **extra)
    assert isinstance(args, theirs)
    assert isinstance(args, runner.RunnerArguments)
    assert isinstance(args, cloud_class)
    assert isinstance(args, cloud.SessionArguments)
    assert isinstance(args, SessionArguments)


@pytest.mark.parametrize(("ours", "theirs", "cloud_class", "extra"), CLASSES, ids=IDS)
def test_every_runner_field_is_there_with_pipecats_default(
    ours: type, theirs: type, cloud_class: type, extra: dict[str, Any]
) -> None:
    args = ours(**extra)
    for name, default in RUNNER_DEFAULTS.items():
        assert getattr(args, name) == default, name
    # And every field of the installed Pipecat's class, with the value Pipecat gives it.
    pipecats = theirs(**extra)
    for f in dataclasses.fields(theirs):
        assert getattr(args, f.name) == getattr(pipecats, f.name), f.name
    if ours is WebSocketSessionArguments:
        assert args.transport_type is None


@pytest.mark.parametrize(("ours", "theirs", "cloud_class", "extra"), CLASSES, ids=IDS)
def test_constructed_with_keywords_as_the_service_does(
    ours: type, theirs: type, cloud_class: type, extra: dict[str, Any]
) -> None:
    args = ours(session_id="s-2", body={"a": 1}, **extra)
    assert (args.session_id, args.body) == ("s-2", {"a": 1})
    for name, value in extra.items():
        assert getattr(args, name) is value
    assert ours(**extra).body is not ours(**extra).body  # a fresh {} each


def test_daily_token_is_kept_out_of_repr() -> None:
    args = DailySessionArguments(
        session_id="s", room_url="https://example.daily.co/room", token="secret-token"
    )
    assert "secret-token" not in repr(args)
    assert args.token == "secret-token"


def test_signal_and_idle_fields_are_not_constructor_arguments() -> None:
    # As in Pipecat: a session's arguments always say "leave the signals alone".
    for name in ("handle_sigint", "handle_sigterm", "pipeline_idle_timeout_secs"):
        with pytest.raises(TypeError):
            PipecatSessionArguments(**{name: True})  # type: ignore[arg-type]


async def test_create_transport_builds_a_daily_transport() -> None:
    from pipecat.transports.daily.transport import DailyParams, DailyTransport

    args = DailySessionArguments(
        session_id="s-3", room_url="https://example.daily.co/room", token="bot-token"
    )
    transport = await create_transport(args, {"daily": lambda: DailyParams()})
    assert isinstance(transport, DailyTransport)


async def test_create_transport_refuses_a_plain_session_as_pipecat_does() -> None:
    # A plain session has no transport: Pipecat refuses it by name, not by an unknown type.
    with pytest.raises(ValueError, match="Unsupported runner arguments type"):
        await create_transport(PipecatSessionArguments(session_id="s"), {})


def run_python(code: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


DESCRIBE = """
import dataclasses, json, sys
from app import arguments as a
def default(f):
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return repr(f.default) if f.default is not dataclasses.MISSING else None
out = {}
for name in ("PipecatSessionArguments", "DailySessionArguments", "WebSocketSessionArguments",
             "SmallWebRTCSessionArguments"):
    cls = getattr(a, name)
    out[name] = {
        "bases": [f"{b.__module__}.{b.__qualname__}" for b in cls.__mro__],
        "fields": {f.name: [f.init, f.kw_only, f.repr] for f in dataclasses.fields(cls)},
    }
print(json.dumps(out))
"""


def test_without_pipecat_the_plain_classes_have_the_same_fields() -> None:
    """Pipecat hidden from a fresh interpreter: plain dataclasses, whose constructor and
    fields match the Pipecat-based classes (names, keyword-only, init, repr)."""
    plain = run_python("import sys; sys.modules['pipecat'] = None\n" + DESCRIBE)
    native = run_python(DESCRIBE)
    for name, described in plain.items():
        assert all(not base.startswith("pipecat") for base in described["bases"]), name
        # Every field of the Pipecat-based class, as it is there; no field of its own.
        assert described["fields"] == native[name]["fields"], name


def test_without_pipecat_cloud_the_classes_are_pipecats_only() -> None:
    described = run_python("import sys; sys.modules['pipecatcloud'] = None\n" + DESCRIBE)
    for name, theirs in [
        ("PipecatSessionArguments", "pipecat.runner.types.RunnerArguments"),
        ("DailySessionArguments", "pipecat.runner.types.DailyRunnerArguments"),
        ("WebSocketSessionArguments", "pipecat.runner.types.WebSocketRunnerArguments"),
        ("SmallWebRTCSessionArguments", "pipecat.runner.types.SmallWebRTCRunnerArguments"),
    ]:
        assert theirs in described[name]["bases"]
        assert not any(b.startswith("pipecatcloud") for b in described[name]["bases"])


def test_arguments_import_nothing_else_of_the_service() -> None:
    code = "import json, sys, app.arguments; print(json.dumps(sorted(sys.modules)))"
    loaded = set(run_python(code))
    assert {m for m in loaded if m.startswith("app.")} == {"app.arguments"}
    assert {"pipecat.runner.types", "pipecatcloud.agent"} <= loaded
