"""Session arguments handed to `bot(args)`.

This is the module `bot.py` imports from. The classes and field names match Pipecat
Cloud's, so a bot written for Pipecat Cloud (or for Pipecat's development runner) reads
them unchanged:

- `PipecatSessionArguments`: a plain session started over HTTP (`POST /start`, `POST /bot`).
- `DailySessionArguments`: a session in a Daily room; `room_url` and the bot's `token`.
- `WebSocketSessionArguments`: a session on `WS /ws`; `websocket` is the FastAPI WebSocket,
  already accepted.
- `SmallWebRTCSessionArguments`: a session on a WebRTC peer connection
  (`webrtc_connection`, Pipecat's `SmallWebRTCConnection`).

Every session has a `session_id` (the caller's `x-daily-session-id`, or a generated UUID4)
and a `body`: the caller's custom JSON object, `{}` when none was sent.

**Pipecat-native.** The bases are chosen once, when this module is imported:

- with `pipecat-ai` installed, each class subclasses the matching class of
  `pipecat.runner.types` (`RunnerArguments`, `DailyRunnerArguments`,
  `WebSocketRunnerArguments`, `SmallWebRTCRunnerArguments`), and, when `pipecatcloud` is
  installed too, the matching class of `pipecatcloud.agent` (`PipecatSessionArguments`, ...),
  which itself subclasses Pipecat's. So `isinstance` checks against either package,
  `pipecat.runner.utils.create_transport()` and `parse_telephony_websocket()` accept them,
  and every field Pipecat defines is there, as Pipecat defines it;
- without Pipecat they are plain dataclasses with the same fields and defaults.

Fields common to every class, with their defaults (the current Pipecat's `RunnerArguments`;
older 1.x releases lack some, and these classes add what the installed release lacks):

- `session_id`: keyword, `None` by default (botdock always sets it);
- `body`: keyword, `{}` by default;
- `handle_sigint`, `handle_sigterm`: always `False`, not constructor arguments. botdock
  owns the process's signals: SIGTERM or SIGINT drains the service and cancels the sessions
  still running at the end of the drain, which ends their pipelines. A bot passes them on
  as Pipecat's examples do (`PipelineRunner(handle_sigint=runner_args.handle_sigint)`), so
  its runner never installs a handler of its own over botdock's (Pipecat's runner handles
  SIGINT unless told not to);
- `pipeline_idle_timeout_secs`: `300`, not a constructor argument, Pipecat's and Pipecat
  Cloud's value, so a bot behaves the same on both. botdock itself never reads it: it is
  the bot's to pass to its pipeline (`idle_timeout_secs` of `PipelineTask`, or of
  `PipelineWorker` in later releases). The session's own limit is `SESSION_TIMEOUT_SECS`;
- `call_data`: keyword, `None`; set by `create_transport()` on a telephony WebSocket;
- `file_storage`: keyword, `None` (uploads are not served by botdock); `cli_args`: `None`.

`DailySessionArguments` adds `room_url` and `token` (`None` by default, kept out of
`repr`), `WebSocketSessionArguments` adds `websocket` and `transport_type` (`None`:
`create_transport()` detects a telephony provider from the first messages; `"websocket"`:
a plain WebSocket client. On `WS /ws` botdock sets it from the client's first message when
the installed Pipecat reads it: `app/ws_detect.py`), `SmallWebRTCSessionArguments` adds
`webrtc_connection`. As in Pipecat, the fields of the base are keyword-only: construct
with keywords, e.g. `DailySessionArguments(session_id=..., room_url=..., token=...)`.

Nothing here imports the rest of botdock, nor FastAPI (Pipecat 1.0's `pipecat.runner.types`
does, the current release's does not).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import WebSocket

__all__ = [
    "DailySessionArguments",
    "PipecatSessionArguments",
    "SessionArguments",
    "SmallWebRTCSessionArguments",
    "WebSocketSessionArguments",
]


def _optional(module: str) -> Any:
    """`module`, or None when it (or a package above it) is not installed. A module missing
    further down, a dependency of a broken install, is raised: falling back to plain classes
    would only hide it until a bot fails."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module + ".").startswith(exc.name + "."):
            raise
        return None


_runner = _optional("pipecat.runner.types")  # the service never requires Pipecat

# Our classes on top of `SessionArguments`, each with the Pipecat class it subclasses
# (Pipecat Cloud's class of the same name subclasses that one too).
_RUNNER_CLASSES = {
    "PipecatSessionArguments": "RunnerArguments",
    "DailySessionArguments": "DailyRunnerArguments",
    "WebSocketSessionArguments": "WebSocketRunnerArguments",
    "SmallWebRTCSessionArguments": "SmallWebRTCRunnerArguments",
}

_cloud = _optional("pipecatcloud.agent") if _runner is not None else None
# An older Pipecat Cloud SDK, whose classes are not Pipecat's, cannot be mixed in.
if _cloud is not None and not (
    hasattr(_cloud, "SessionArguments")
    and all(
        issubclass(getattr(_cloud, name, type(None)), getattr(_runner, runner))
        for name, runner in _RUNNER_CLASSES.items()
    )
):
    _cloud = None


if TYPE_CHECKING or _runner is None:
    # Without Pipecat (and what type checkers see): plain dataclasses with Pipecat's fields.

    @dataclass
    class SessionArguments:
        """Base class of every session's arguments."""

        handle_sigint: bool = field(default=False, init=False, kw_only=True)
        handle_sigterm: bool = field(default=False, init=False, kw_only=True)
        pipeline_idle_timeout_secs: float | None = field(default=300, init=False, kw_only=True)
        body: Any = field(default_factory=dict, kw_only=True)
        call_data: Any = field(default=None, kw_only=True)
        session_id: str | None = field(default=None, kw_only=True)
        cli_args: Any = field(default=None, init=False, kw_only=True)
        file_storage: Any = field(default=None, kw_only=True)

    @dataclass
    class PipecatSessionArguments(SessionArguments):
        """A plain session: the bot gets only the caller's custom data."""

    @dataclass
    class DailySessionArguments(SessionArguments):
        """A session in a Daily room. `token` is the bot's own meeting token: keep it
        secret."""

        room_url: str
        token: str | None = field(default=None, repr=False)

    @dataclass
    class WebSocketSessionArguments(SessionArguments):
        """A session on a WebSocket the service has already accepted."""

        websocket: WebSocket
        transport_type: str | None = None

    @dataclass
    class SmallWebRTCSessionArguments(SessionArguments):
        """A session on a WebRTC peer connection (Pipecat's `SmallWebRTCConnection`)."""

        webrtc_connection: Any

else:
    # The installed Pipecat's own fields: ours add only what an older release lacks.
    _RUNNER_FIELDS = _runner.RunnerArguments.__dataclass_fields__

    def _bases(name: str) -> tuple[type, ...]:
        """The bases of our class `name`: Pipecat Cloud's class of that name when it is
        installed (it subclasses Pipecat's), else Pipecat's; then our `SessionArguments`."""
        if _cloud is not None:
            base = getattr(_cloud, name)
        else:
            base = getattr(_runner, _RUNNER_CLASSES[name])
        if issubclass(SessionArguments, base):  # Pipecat's RunnerArguments, already a base
            return (SessionArguments,)
        return (base, SessionArguments)

    @dataclass
    class SessionArguments(
        *(
            (_runner.RunnerArguments, _cloud.SessionArguments)
            if _cloud is not None
            else (_runner.RunnerArguments,)
        )
    ):
        """Base class of every session's arguments: Pipecat's `RunnerArguments`."""

        # Keyword with a default whatever the Pipecat release: Pipecat Cloud's mixin declares
        # it positional and required for the releases that lack it on `RunnerArguments`
        # (before 1.2). Declared again on each class below, whose Pipecat Cloud base comes
        # later in the field order.
        session_id: str | None = field(default=None, kw_only=True)
        # What older Pipecat 1.x releases lack, so a bot reads the same fields on all.
        if "call_data" not in _RUNNER_FIELDS:
            call_data: Any = field(default=None, kw_only=True)
        if "file_storage" not in _RUNNER_FIELDS:
            file_storage: Any = field(default=None, kw_only=True)

    @dataclass
    class PipecatSessionArguments(*_bases("PipecatSessionArguments")):
        """A plain session: the bot gets only the caller's custom data."""

        session_id: str | None = field(default=None, kw_only=True)

    @dataclass
    class DailySessionArguments(*_bases("DailySessionArguments")):
        """A session in a Daily room. `token` is the bot's own meeting token: keep it
        secret."""

        session_id: str | None = field(default=None, kw_only=True)
        token: str | None = field(default=None, repr=False)

    @dataclass
    class WebSocketSessionArguments(*_bases("WebSocketSessionArguments")):
        """A session on a WebSocket the service has already accepted."""

        session_id: str | None = field(default=None, kw_only=True)

        if "transport_type" not in _runner.WebSocketRunnerArguments.__dataclass_fields__:
            transport_type: str | None = None

    @dataclass
    class SmallWebRTCSessionArguments(*_bases("SmallWebRTCSessionArguments")):
        """A session on a WebRTC peer connection (Pipecat's `SmallWebRTCConnection`)."""

        session_id: str | None = field(default=None, kw_only=True)
