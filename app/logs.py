"""One logging pipeline: loguru for the app, uvicorn and the bot alike.

Lines inside a session carry its `session_id` (bound with `SessionLogContext`, which
follows the session's task, the tasks it starts and its worker thread). Probe requests are
not access-logged. Python warnings are log lines too. A WebSocket handshake is logged once,
by the app, with the session id and without query values (the caller's `body`, a `token`):
uvicorn's own lines for it are dropped.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from loguru import logger

if TYPE_CHECKING:
    from loguru import Logger, Message, Record

PROBE_PATHS = frozenset({"/livez", "/readyz", "/health", "/metrics"})

_SESSION_ID: ContextVar[str | None] = ContextVar("botdock_session_id", default=None)


class SessionLogContext:
    """`with SessionLogContext(session_id):` tags every line logged inside the block, and by
    the tasks and threads started there, with the session id, as
    `logger.contextualize(session_id=...)` would. A session holds it for its whole life, and
    this costs about 100 bytes where `contextualize` (a generator, its frame and two dicts)
    costs 900: per-session memory with many idle sessions (docs/benchmarks.md)."""

    __slots__ = ("_outer", "_session_id")

    def __init__(self, session_id: str) -> None:
        self._session_id = session_id
        self._outer: str | None = None

    def __enter__(self) -> None:
        self._outer = _SESSION_ID.get()
        _SESSION_ID.set(self._session_id)

    def __exit__(self, *exc_info: object) -> None:
        _SESSION_ID.set(self._outer)


def current_session_id() -> str | None:
    """The session the running code belongs to, if any."""
    return _SESSION_ID.get()


def _add_session_id(record: Record) -> None:
    """The loguru patcher behind `SessionLogContext`; an id already set on the line (by
    `logger.contextualize` or `bind`) wins."""
    session_id = _SESSION_ID.get()
    if session_id is not None and record["extra"].get("session_id", "-") == "-":
        record["extra"]["session_id"] = session_id


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route every log line through loguru, once, in the chosen format."""
    logger.remove()
    logger.configure(extra={"session_id": "-"}, patcher=_add_session_id)
    # format="" leaves loguru only "\n{exception}" to format; the sinks build the rest.
    sink = _json_sink if fmt == "json" else _text_sink(sys.stderr)
    logger.add(sink, level=level, format="", backtrace=False, diagnose=False, colorize=False)
    _intercept_stdlib(level)
    warnings.showwarning = _show_warning
    threading.excepthook = _thread_raised
    if threading.Thread.start is not _start_in_session:
        threading.Thread.start = _start_in_session  # type: ignore[method-assign]


_thread_start = threading.Thread.start


def _start_in_session(self: threading.Thread) -> None:
    """`Thread.start` that remembers the session it was started in: a new thread starts with
    empty context variables, so its uncaught exception could not name the session otherwise."""
    self._botdock_session_id = _SESSION_ID.get()  # type: ignore[attr-defined]
    _thread_start(self)


def _thread_raised(args: threading.ExceptHookArgs) -> None:
    """An uncaught exception in a thread (a bot's own, say) as one log line with its
    traceback and the session it was started in, instead of Python's raw print."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread
    session_id = getattr(thread, "_botdock_session_id", None) or "-"
    logger.bind(session_id=session_id, logger_name="threading").opt(
        exception=(args.exc_type, args.exc_value, args.exc_traceback)
    ).error("thread {} raised {}", thread.name if thread else "?", args.exc_type.__name__)


_print_warning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """`warnings.showwarning` as one log line (`file:line: Category: message`, the first line
    Python would print), with the session id when raised inside a session. A warning aimed at
    a stream of the caller's own still goes there."""
    if file is not None:
        _print_warning(message, category, filename, lineno, file, line)
        return
    logger.bind(logger_name="py.warnings").warning(
        "{}:{}: {}: {}", filename, lineno, category.__name__, message
    )


def _intercept_stdlib(level: str) -> None:
    """Send stdlib logging (uvicorn, websockets, asyncio, libraries) to loguru.

    Levels are set explicitly: a root logger at NOTSET would make libraries such as
    websockets build a DEBUG record for every frame.
    """
    stdlib_level = logging.getLevelName(level if level in _STDLIB_LEVELS else "DEBUG")
    # The handler reads a record's name, level, message and exception only: skip the caller
    # lookup and the thread and process names each record would otherwise collect (the
    # logging HOWTO's "Optimization"), about 2 us of uvicorn's access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _InterceptHandler()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(stdlib_level, logging.INFO) if level != "DEBUG" else logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        named = logging.getLogger(name)
        named.handlers = []
        named.propagate = True
        named.setLevel(stdlib_level)
    logging.getLogger("uvicorn.access").addFilter(_skip_probes)
    # uvicorn hands `uvicorn.error` to the websockets library as its logger: below INFO it
    # would log every handshake header and frame (query values and message data included).
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.setLevel(max(stdlib_level, logging.INFO))
    uvicorn_error.addFilter(_quiet_websocket_lines)
    # Frame-level chatter: never below INFO, even with LOG_LEVEL=DEBUG.
    for name in ("websockets", "websockets.server", "websockets.protocol"):
        logging.getLogger(name).setLevel(max(stdlib_level, logging.INFO))
    # The Daily client's HTTP library: a line per request adds nothing to botdock's own.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(stdlib_level, logging.WARNING))


_STDLIB_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _skip_probes(record: logging.LogRecord) -> bool:
    # uvicorn's access record args: (client, method, path, http_version, status)
    args = record.args
    if isinstance(args, tuple) and len(args) >= 3:
        path = str(args[2]).split("?", 1)[0]
        return path not in PROBE_PATHS
    return True


# uvicorn's WebSocket handshake lines start so; websockets adds the two chatter lines.
_UVICORN_WEBSOCKET_LINE = '%s - "WebSocket %s"'
_WEBSOCKET_CHATTER = frozenset({"connection open", "connection closed"})


def _quiet_websocket_lines(record: logging.LogRecord) -> bool:
    """Drop uvicorn's line for an accepted WebSocket (`log_websocket_accepted` logs it, with
    the session id) and the websockets chatter; hide the query values in its other handshake
    lines (a 403 for an unknown path), as in every stdlib line."""
    msg = record.msg
    if not isinstance(msg, str):
        return True
    if msg in _WEBSOCKET_CHATTER:
        return False
    # Its other handshake lines (a 403 for an unknown path) keep their keys only: the
    # intercept handler passes every stdlib message through `redact`.
    return not (msg.startswith(_UVICORN_WEBSOCKET_LINE) and msg.endswith("[accepted]"))


def _websocket_target(scope: Mapping[str, Any]) -> str:
    query: bytes = scope.get("query_string", b"")
    target = quote(scope.get("path", ""))
    return redact(f"{target}?{query.decode('latin-1')}") if query else target


def _client(scope: Mapping[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def log_websocket_accepted(scope: Mapping[str, Any], session_id: str) -> None:
    """The one line for a session's accepted WebSocket handshake, in uvicorn's shape, with the
    session id and without query values."""
    with SessionLogContext(session_id):
        logger.opt(depth=1).info(
            '{} - "WebSocket {}" [accepted]', _client(scope), _websocket_target(scope)
        )


def log_websocket_refused(scope: Mapping[str, Any], code: int) -> None:
    """The one line for a WebSocket refused with a close code (accepted, then closed at once),
    without query values."""
    logger.opt(depth=1).info(
        '{} - "WebSocket {}" [refused {}]', _client(scope), _websocket_target(scope), code
    )


_QUERY_VALUE = re.compile(r"([?&][^=&\s\"?#]*=)[^&\s\"#]*")


def redact(message: str) -> str:
    """Hide every query value in a logged URL, keys kept: a key may be spelled in any case or
    percent-encoding a server accepts (`?%74oken=`), and values are the caller's data
    (`?body=`) or secrets (`?token=`), neither of which belongs in a log."""
    return _QUERY_VALUE.sub(r"\1[redacted]", message) if "=" in message else message


class _InterceptHandler(logging.Handler):
    """Each stdlib record as a loguru line under the stdlib logger's name. The bound logger
    for each name and the level names loguru knows are kept: `opt()` and `bind()` would
    otherwise build two logger objects per line (about 2 us of uvicorn's access line)."""

    def __init__(self) -> None:
        super().__init__()
        self._loggers: dict[str, Logger] = {}
        self._levels: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        bound = self._loggers.get(record.name)
        if bound is None:
            bound = self._loggers[record.name] = logger.bind(logger_name=record.name)
        if record.exc_info:
            bound = bound.opt(exception=record.exc_info)
        bound.log(self._level(record), redact(record.getMessage()))

    def _level(self, record: logging.LogRecord) -> str | int:
        name = record.levelname
        if name in self._levels:
            return name
        try:
            logger.level(name)
        except ValueError:
            return record.levelno
        self._levels.add(name)
        return name


def _text_sink(stream: TextIO) -> Callable[[Message], None]:
    """Lines as `{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[session_id]} | <logger>
    | {message}\n{exception}`, built in one f-string (about 1 us a line cheaper than loguru's
    format string) and written in one call; stderr is line-buffered, so no flush is needed."""
    write = stream.write

    def sink(message: Message) -> None:
        record = message.record
        extra = record["extra"]
        # `message` is "\n" and the formatted exception, if any (format="").
        write(
            f"{record['time'].isoformat(' ', 'milliseconds')[:23]} | "
            f"{record['level'].name: <8} | {extra['session_id']} | "
            f"{extra.get('logger_name', record['name'])} | {record['message']}{message}"
        )

    return sink


_encode_json = json.JSONEncoder(default=str).encode  # json.dumps(default=str) builds one a call
_quote = encode_basestring_ascii  # a JSON string, as json.dumps writes it


def _json_sink(message: Message) -> None:
    """One JSON object a line: time, level, message, logger, then the extra fields. The
    common line (string fields, no exception) is built in one f-string, about 1.5 us cheaper
    than the encoder, which writes the others (exactly as `json.dumps(entry, default=str)`)."""
    record: Record = message.record
    name = record["extra"].get("logger_name", record["name"])
    fields = _string_fields(record["extra"]) if record["exception"] is None else None
    if fields is None or not isinstance(name, str):
        line = _encode_json(_json_entry(record, name))
    else:
        line = (
            f'{{"time": {_quote(record["time"].isoformat())}, '
            f'"level": {_quote(record["level"].name)}, "message": {_quote(record["message"])}, '
            f'"logger": {_quote(name)}{fields}}}'
        )
    sys.stderr.write(line + "\n")


def _string_fields(extra: dict[str, Any]) -> str | None:
    """The extra fields as `, "key": "value"` pairs, or None if a value is not a string."""
    fields = ""
    for key, value in extra.items():
        if key == "logger_name":
            continue
        if type(value) is not str:
            return None
        fields += f", {_quote(key)}: {_quote(value)}"
    return fields


def _json_entry(record: Record, name: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": name,
    }
    for key, value in record["extra"].items():
        if key != "logger_name":
            entry[key] = value
    if record["exception"] is not None:
        entry["exception"] = "".join(_format_exception(record))
    return entry


def _format_exception(record: Record) -> list[str]:
    import traceback

    exc = record["exception"]
    assert exc is not None
    return traceback.format_exception(exc.type, exc.value, exc.traceback)
