"""The worker program, `python -m app.workers.worker --fd N --bot MODULE ...`: started by the
pool (`app.workers.pool`) ahead of need, it imports the bot module once, says `hello`, then
runs one session at a time as the server asks over its channel (`app.workers.protocol`).

It builds the same `app.arguments` classes the server would, and for a WebSocket session a
real Starlette `WebSocket`, already accepted, whose ASGI `receive` and `send` are the relay:
the bot (and Pipecat's `FastAPIWebsocketTransport`) sees the interface it sees inline.

Its log lines go to the stderr it inherits from the server, through the same loguru sinks
(`app.logs.configure_logging`, same level and format), with the session id: one sink, one
format. Its event loop is watched as the server's is (`app.loop_monitor`): a bot that blocks
it is named, with its session id, in a warning. SIGINT is ignored (a terminal's Ctrl-C
reaches the whole process group; the server drains and ends its workers), and the worker
exits when its channel closes. While a session runs, the loop's lag samples (one a tick,
`app.loop_monitor.TICK_SECS`) go to the server in a `lag` message every `LAG_REPORT_SECS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.util
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

from loguru import logger

from app.workers.protocol import Channel, ChannelClosed, Message

_log = logger.bind(logger_name="app.workers.worker")
THREAD_SETTLE_SECS = 0.2  # how long a finished session's threads may take to end
LAG_REPORT_SECS = 0.25  # how often a running session's worker sends its loop's lag samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.workers.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--bot", required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", default="text")
    parser.add_argument("--loop-lag-warn-secs", type=float, default=0.25)
    options = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_the_server()
    # The same import order as `python -m app` (see there): Pipecat Cloud's SDK, imported
    # after logging is configured, would replace the sinks.
    logger.disable("pipecat")
    from app.bot_loader import BotLoadError, load_bot
    from app.logs import configure_logging

    if importlib.util.find_spec("pipecatcloud") is not None:
        importlib.import_module("pipecatcloud")
    logger.enable("pipecat")
    configure_logging(options.log_level, options.log_format)
    try:
        bot = load_bot(options.bot)
    except BotLoadError as exc:
        _log.error("worker cannot start: {}", exc)
        return 3
    gc.freeze()  # the bot module's imports, out of full collections (as in `python -m app`)
    try:
        import uvloop

        run: Any = uvloop.run  # the loop the server's sessions run on, where installed
    except ImportError:
        run = asyncio.run
    run(_serve(options.fd, bot, options.loop_lag_warn_secs))
    return 0


async def _serve(fd: int, bot: Any, warn_secs: float) -> None:
    from app.logs import SessionLogContext
    from app.loop_monitor import LoopMonitor

    channel = await Channel.open(socket.socket(fileno=fd))
    # The worker's own loop is watched as the server's is: a bot that blocks it is named, with
    # its session id and line, in a warning (LOOP_LAG_WARN_SECS).
    samples = _LagSamples()
    monitor = LoopMonitor(warn_secs, samples)
    monitor.start()
    session: _Session | None = None
    # Started before any session: not one of a session's tasks (`_Session._settled`).
    reporter = asyncio.create_task(
        _report_lag(channel, samples, lambda: session), name="lag-report"
    )
    baseline = threading.active_count()
    channel.write({"t": "hello", "pid": os.getpid()})
    while True:
        try:
            message, data = await channel.recv()
        except ChannelClosed:
            break
        kind = message["t"]
        if kind == "start":
            session = _Session(channel, bot, message, baseline)
            # Created inside the session's log context: the task (and the loop monitor's
            # record of whom it belongs to) carries the session id.
            with SessionLogContext(session.id):
                session.task = asyncio.create_task(session.run(), name=f"session-{session.id}")
        elif kind == "ws" and session is not None:
            session.deliver(message, data)
        elif kind in ("offer", "candidate") and session is not None:
            session.to_peer(message)
        elif kind == "cancel" and session is not None and session.task is not None:
            session.task.cancel()
        elif kind == "exit":
            break
    reporter.cancel()
    channel.close()
    await monitor.stop()


class _LagSamples:
    """The loop monitor's samples since the last report (its `LagObserver`)."""

    def __init__(self) -> None:
        self.pending: list[float] = []

    def observe(self, lag_secs: float) -> None:
        self.pending.append(lag_secs)

    def take(self) -> list[float]:
        taken, self.pending = self.pending, []
        return taken


async def _report_lag(
    channel: Channel, samples: _LagSamples, current: Callable[[], _Session | None]
) -> None:
    """Send the lag samples to the server while a session runs (an idle worker's channel is
    not read; its samples are dropped). A blocked loop sends nothing until it is free: then
    the stall's sample goes with the next report."""
    while True:
        await asyncio.sleep(LAG_REPORT_SECS)
        taken = samples.take()
        session = current()
        if not taken or session is None or session.ended:
            continue
        with contextlib.suppress(ChannelClosed):
            channel.write({"t": "lag", "samples": [round(lag, 4) for lag in taken]})


class _Session:
    def __init__(self, channel: Channel, bot: Any, start: Message, baseline: int) -> None:
        self.id: str = start["session_id"]
        self.task: asyncio.Task[None] | None = None
        self._channel = channel
        self._bot = bot
        self._start = start
        self._baseline = baseline
        self._tasks_before: set[asyncio.Task[Any]] = set()
        self.ended = False  # the session reported done: its WebSocket is dead
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._peer: Any = None  # a WebRTC session's SmallWebRTCConnection
        self._peer_lock = asyncio.Lock()  # renegotiations and candidates, in their order
        self._peer_tasks: set[asyncio.Task[None]] = set()

    def to_peer(self, message: Message) -> None:
        """A renegotiation or an ICE candidate for the session's peer connection."""
        task = asyncio.get_running_loop().create_task(self._to_peer(message))
        self._peer_tasks.add(task)
        task.add_done_callback(self._peer_tasks.discard)

    async def _to_peer(self, message: Message) -> None:
        from app.webrtc import why

        async with self._peer_lock:
            if self._peer is None or self.ended:
                return
            try:
                if message["t"] == "offer":
                    await self._peer.renegotiate(
                        sdp=message["sdp"],
                        type=message["type"],
                        restart_pc=bool(message.get("restart_pc")),
                    )
                    self._answer(message["id"], self._peer.get_answer())
                else:
                    await self._peer.add_ice_candidate(_candidate(message))
            except Exception as exc:
                if message["t"] == "offer":
                    self._answer(message["id"], None, why(exc))
                else:
                    _log.warning("an ICE candidate was not taken: {}", why(exc))

    def _answer(self, number: int, answer: Any, error: str | None = None) -> None:
        reply: Message = {"t": "answer", "id": number}
        if error is not None:
            reply["error"] = error
        else:
            reply.update(sdp=answer["sdp"], type=answer["type"], pc_id=answer["pc_id"])
        with contextlib.suppress(ChannelClosed):
            self._channel.write(reply)

    async def _open_peer(self) -> None:
        """A WebRTC session's peer connection, answering the offer `start` carried."""
        from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection

        from app.webrtc import close_quietly, why

        offer = self._start["offer"]
        servers = [IceServer(**server) for server in self._start.get("ice_servers") or []]
        connection = SmallWebRTCConnection(ice_servers=servers or None)
        try:
            await connection.initialize(sdp=offer["sdp"], type=offer["type"])
            answer = connection.get_answer()
            if answer is None:
                raise ValueError("the SDP offer produced no answer")
        except Exception as exc:
            await close_quietly(connection)
            self._answer(0, None, why(exc))
            raise _Refused(f"the SDP offer was refused: {why(exc)}") from None
        self._peer = connection
        self._answer(0, answer)

    async def _close_peer(self) -> None:
        from app.webrtc import close_quietly

        peer, self._peer = self._peer, None
        if peer is not None:
            await close_quietly(peer)
        if self._peer_tasks:
            await asyncio.wait(list(self._peer_tasks), timeout=1)

    def deliver(self, message: Message, data: bytes | None) -> None:
        """A relayed client message; at most `WS_WINDOW` wait here (the server's credit)."""
        event: Message = {"type": message["type"]}
        if message["type"] == "websocket.receive":
            if data is not None:
                event["bytes"] = data
            else:
                event["text"] = message.get("text", "")
        else:
            event["code"] = message.get("code", 1005)
            event["reason"] = message.get("reason", "")
        self._inbox.put_nowait(event)

    async def run(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        from app.logs import SessionLogContext

        with SessionLogContext(self.id):
            self._tasks_before = asyncio.all_tasks()
            outcome, reason = "completed", ""
            try:
                if self._start["kind"] == "webrtc":
                    await self._open_peer()
                await self._bot.run(self._arguments())
            except _Refused as exc:
                outcome, reason = "refused", str(exc)
            except asyncio.CancelledError:
                outcome = "cancelled"
            except WebSocketDisconnect:
                outcome = "client_gone"
            except BaseException as exc:
                _failed(exc)
                outcome, reason = "failed", f"bot raised {type(exc).__name__}"
            await self._close_peer()  # the client sees its peer closed, whatever ended it
            clean = await self._settled()
            self.ended = True
            with contextlib.suppress(ChannelClosed):
                await self._channel.send(
                    {"t": "done", "outcome": outcome, "reason": reason, "clean": clean}
                )

    async def _settled(self) -> bool:
        """Whether every thread and task the session started has ended: a worker with one left
        running (a sync bot cancelled, a thread that never ends, a task the bot did not wait
        for) is not given another session, which that leftover could reach."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + THREAD_SETTLE_SECS
        while threading.active_count() > self._baseline or self._leftover_tasks():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _leftover_tasks(self) -> bool:
        current = asyncio.current_task()
        return any(
            task is not current and not task.done()
            for task in asyncio.all_tasks() - self._tasks_before
        )

    def _arguments(self) -> Any:
        from app.arguments import (
            DailySessionArguments,
            PipecatSessionArguments,
            SmallWebRTCSessionArguments,
            WebSocketSessionArguments,
        )
        from app.telephony import call_data

        start = self._start
        common: dict[str, Any] = {"session_id": self.id, "body": start.get("body") or {}}
        kind = start["kind"]
        if kind == "daily":
            return DailySessionArguments(
                room_url=start["room_url"], token=start.get("token"), **common
            )
        if kind == "webrtc":
            return SmallWebRTCSessionArguments(webrtc_connection=self._peer, **common)
        if kind == "websocket":
            websocket = self._websocket()
            transport_type = start.get("transport_type")
            data = None
            if start.get("call_data") is not None:  # a phone call's, as the server read it
                data = call_data.typed(str(transport_type), start["call_data"])
                call_data.leave_for_pipecat(websocket, str(transport_type), data)
            args = WebSocketSessionArguments(websocket=websocket, call_data=data, **common)
            args.transport_type = transport_type
            return args
        return PipecatSessionArguments(**common)

    def _websocket(self) -> Any:
        from starlette.websockets import WebSocket, WebSocketState

        channel, inbox = self._channel, self._inbox

        def check_open() -> None:
            # A task the bot left behind must not reach the worker's next session's client.
            if self.ended:
                raise RuntimeError("this WebSocket's session has ended")

        async def receive() -> Message:
            check_open()
            event = await inbox.get()
            with contextlib.suppress(ChannelClosed):
                channel.write({"t": "ack"})
            return event

        async def send(event: MutableMapping[str, Any]) -> None:
            check_open()
            kind = event.get("type")
            if kind == "websocket.send":
                data = event.get("bytes")
                if data is not None:
                    await channel.send({"t": "ws_send"}, bytes(data))
                else:
                    await channel.send({"t": "ws_send", "text": event.get("text", "")})
            elif kind == "websocket.close":
                await channel.send(
                    {
                        "t": "ws_close",
                        "code": event.get("code", 1000),
                        "reason": event.get("reason") or "",
                    }
                )

        websocket = WebSocket(_scope(self._start.get("scope") or {}), receive, send)
        websocket.client_state = WebSocketState.CONNECTED  # accepted by the server
        websocket.application_state = WebSocketState.CONNECTED
        return websocket


class _Refused(Exception):
    """The session's WebRTC offer was refused: it ends without its bot."""


def _candidate(message: Message) -> Any:
    """An ICE candidate as the server sent it (None: the end of the candidates)."""
    if not message.get("candidate"):
        return None
    from aiortc.sdp import candidate_from_sdp

    candidate = candidate_from_sdp(str(message["candidate"]))
    candidate.sdpMid = message.get("sdp_mid")
    candidate.sdpMLineIndex = message.get("sdp_mline_index")
    return candidate


def _die_with_the_server() -> None:
    """On Linux, have the kernel kill this worker when the server process ends, even if the
    server was killed (SIGKILL, OOM) and this worker's loop is blocked so it cannot see its
    channel close."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the server ended before the call: nobody to serve
            os._exit(0)


def _failed(exc: BaseException) -> None:
    # Not inline in run(): see SessionManager._started (a frame kept for the session's life).
    _log.opt(exception=exc).error("bot raised {}; ending this session only", type(exc).__name__)


def _scope(sent: Message) -> Message:
    """The WebSocket's ASGI scope as the server sent it (`app.workers.runner.scope_message`),
    bytes made bytes again."""
    scope = dict(sent)
    scope["type"] = "websocket"
    scope["query_string"] = str(sent.get("query_string", "")).encode("latin-1")
    scope["headers"] = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in sent.get("headers", [])
    ]
    for key in ("client", "server"):
        if sent.get(key) is not None:
            scope[key] = tuple(sent[key])
    return scope


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: a thread a bot left running (non-daemon) must not hold the worker open.
    os._exit(code)
