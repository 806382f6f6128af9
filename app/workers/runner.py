"""The session manager's seam for `SESSION_ISOLATION=process`: a bot runner whose `run(args)`
runs the session in a worker process instead of calling `bot(args)` on the server's loop.
The manager keeps owning capacity, time limits, cancel, drain, final states, metrics and
its log lines; this only moves the bot.

- Plain and Daily sessions: the arguments travel over (`session_id`, `body`, `room_url`,
  `token`); the worker builds the same `app.arguments` classes.
- WebSocket sessions: the client's `websocket.receive`/`websocket.disconnect` events are
  relayed to the worker and the bot's `websocket.send`/`websocket.close` back. Back-pressure
  both ways: the server keeps at most `WS_WINDOW` relayed messages unread by the bot (then it
  stops reading the client), and the bot's sends wait while the server's socket buffer is
  full (the server reads the worker no faster than it can write to the client). The relay
  reads the socket through `websocket.receive()`, so a message `app.ws_detect` peeked comes
  first.
- Phone calls: a WebSocket session whose `call_data` (read from the stream's handshake by the
  server) travels as JSON and is typed again in the worker (`app.telephony.call_data`); the
  handshake's messages reach the bot through the relay, replayed first.
- SmallWebRTC sessions: the offer travels in `start`; the worker makes the peer connection
  (Pipecat's `SmallWebRTCConnection`) and sends its `answer`, which the session's
  `app.webrtc.RemotePeer` hands to whoever waits for it. Renegotiations (`offer`, answered by
  `answer`) and ICE candidates (`candidate`) go the same way. The worker closes the peer when
  the session ends, whatever ended it.
- Cancel (a request, the time limit, the drain): the worker is told, and gets `stop_grace_secs`
  to stop; then it is killed.
- A worker that dies (a segfault, `os._exit`, the kernel's or the memory limit's SIGKILL) ends
  its session as failed with a reason that says how; the pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from loguru import logger

from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    SmallWebRTCSessionArguments,
    WebSocketSessionArguments,
)
from app.exceptions import ClientGone, SessionFailure
from app.telephony import call_data
from app.webrtc import RemotePeer
from app.workers.pool import Worker, WorkerPool, WorkerStartError
from app.workers.protocol import WS_WINDOW, ChannelClosed, Message

_log = logger.bind(logger_name="app.workers.runner")
_SCOPE_KEYS = ("http_version", "scheme", "path", "root_path", "subprotocols", "client", "server")


@dataclass(frozen=True)
class _Outcome:
    kind: str  # completed, cancelled, client_gone, failed, died
    reason: str = ""
    clean: bool = False


class ProcessRunner:
    """Runs each session's bot in a worker of `pool`."""

    is_async = True  # a worker can always be stopped: it is killed after the grace

    def __init__(self, pool: WorkerPool, stop_grace_secs: float) -> None:
        self._pool = pool
        self._grace = stop_grace_secs

    async def run(self, args: SessionArguments) -> None:
        start = _start_message(args)
        session_id = start["session_id"]
        try:
            worker = await self._pool.acquire(session_id)
        except WorkerStartError as exc:
            raise SessionFailure(f"no worker process could be started: {exc}") from None
        ended = [_Outcome("died")]  # what the worker said last, even when cancelled
        try:
            outcome = ended[0] = await self._session(worker, start, args, ended)
        finally:
            self._pool.release(worker, clean=ended[0].clean)
        if outcome.kind == "completed":
            return
        if outcome.kind == "cancelled":  # the bot cancelled itself, as inline it would
            raise asyncio.CancelledError
        if outcome.kind == "client_gone":
            raise ClientGone
        raise SessionFailure(outcome.reason, logged=outcome.kind == "failed")

    async def _session(
        self, worker: Worker, start: Message, args: SessionArguments, ended: list[_Outcome]
    ) -> _Outcome:
        websocket = args.websocket if isinstance(args, WebSocketSessionArguments) else None
        peer = _remote_peer(args)
        if peer is not None:
            peer.attach(worker.channel)
        credits = asyncio.Semaphore(WS_WINDOW)
        pump: asyncio.Task[None] | None = None
        try:
            await worker.channel.send(start)
        except ChannelClosed:
            return await self._died(worker)
        if websocket is not None:
            pump = asyncio.create_task(_pump_client(websocket, worker, credits))
        try:
            return await self._until_done(worker, websocket, credits, peer)
        except asyncio.CancelledError:
            with contextlib.suppress(ChannelClosed):
                worker.channel.write({"t": "cancel"})
            ended[0] = await self._grace_then_kill(worker, websocket, credits, peer)
            raise
        finally:
            if pump is not None:
                pump.cancel()
            if peer is not None:
                peer.detach()

    async def _grace_then_kill(
        self, worker: Worker, websocket: Any, credits: asyncio.Semaphore, peer: RemotePeer | None
    ) -> _Outcome:
        """A cancelled session's end: the worker's `done` within the grace, or its death.

        `asyncio.wait`, not `asyncio.timeout`: this runs in a task already cancelled, and on
        Python 3.11.0 to 3.11.2 (Debian 12's python3) `asyncio.timeout` takes its own expiry in
        such a task for a second cancel and raises `CancelledError`, not `TimeoutError`: the
        worker was never killed here."""
        waiting = asyncio.ensure_future(self._until_done(worker, websocket, credits, peer))
        try:
            done, _ = await asyncio.wait({waiting}, timeout=self._grace)
            if waiting in done:
                return waiting.result()
            _log.warning(
                "the bot did not stop within {}s of being cancelled: its worker process "
                "(pid {}) is killed",
                f"{self._grace:g}",
                worker.pid,
            )
            worker.kill(f"the bot did not stop within {self._grace:g}s of being cancelled")
            return await waiting  # its channel closes with the process: `died`
        finally:
            if not waiting.done():
                waiting.cancel()

    async def _until_done(
        self, worker: Worker, websocket: Any, credits: asyncio.Semaphore, peer: RemotePeer | None
    ) -> _Outcome:
        while True:
            try:
                message, data = await worker.channel.recv()
            except ChannelClosed:
                return await self._died(worker)
            kind = message["t"]
            if kind == "ack":
                credits.release()
            elif kind == "ws_send" and websocket is not None:
                event: Message = {"type": "websocket.send"}
                if data is not None:
                    event["bytes"] = data
                else:
                    event["text"] = message.get("text", "")
                with contextlib.suppress(Exception):  # a client gone: its disconnect follows
                    await websocket.send(event)
            elif kind == "ws_close" and websocket is not None:
                with contextlib.suppress(Exception):
                    await websocket.close(message.get("code", 1000), message.get("reason", ""))
            elif kind == "lag":
                self._pool.record_lag(worker, message.get("samples"))
            elif kind == "answer" and peer is not None:
                peer.on_answer(message)
            elif kind == "done":
                return _Outcome(
                    str(message.get("outcome")),
                    str(message.get("reason", "")),
                    bool(message.get("clean")),
                )

    @staticmethod
    async def _died(worker: Worker) -> _Outcome:
        await worker.wait_exit()
        return _Outcome("died", worker.death_reason())


async def _pump_client(websocket: Any, worker: Worker, credits: asyncio.Semaphore) -> None:
    """The client's messages to the worker, never more than `WS_WINDOW` ahead of the bot."""
    while True:
        await credits.acquire()
        try:
            event = await websocket.receive()
        except Exception:
            event = {"type": "websocket.disconnect", "code": 1006}
        message: Message = {"t": "ws", "type": event["type"]}
        data = None
        if event["type"] == "websocket.receive":
            if event.get("bytes") is not None:
                data = event["bytes"]
            else:
                message["text"] = event.get("text") or ""
        else:
            message["code"] = event.get("code", 1005)
            message["reason"] = event.get("reason") or ""
        try:
            await worker.channel.send(message, data)
        except ChannelClosed:
            return
        if event["type"] != "websocket.receive":
            return


def _start_message(args: SessionArguments) -> Message:
    start: Message = {"t": "start", "session_id": args.session_id, "body": args.body}
    if isinstance(args, DailySessionArguments):
        start.update(kind="daily", room_url=args.room_url, token=args.token)
    elif isinstance(args, WebSocketSessionArguments):
        start.update(
            kind="websocket",
            transport_type=args.transport_type,
            scope=scope_message(args.websocket.scope),
        )
        if args.call_data is not None:  # a phone call's: typed again in the worker
            start["call_data"] = call_data.plain(args.call_data)
    elif (peer := _remote_peer(args)) is not None:
        start.update(kind="webrtc", **peer.start_fields())
    elif isinstance(args, PipecatSessionArguments):
        start["kind"] = "pipecat"
    else:
        raise SessionFailure(
            f"SESSION_ISOLATION=process does not run {type(args).__name__} sessions yet; "
            "use SESSION_ISOLATION=inline"
        )
    return start


def _remote_peer(args: SessionArguments) -> RemotePeer | None:
    if isinstance(args, SmallWebRTCSessionArguments) and isinstance(
        args.webrtc_connection, RemotePeer
    ):
        return args.webrtc_connection
    return None


def scope_message(scope: Any) -> Message:
    """The parts of a WebSocket's ASGI scope a bot may read, as JSON."""
    sent: Message = {key: scope[key] for key in _SCOPE_KEYS if scope.get(key) is not None}
    sent["query_string"] = bytes(scope.get("query_string", b"")).decode("latin-1")
    sent["headers"] = [
        [bytes(name).decode("latin-1"), bytes(value).decode("latin-1")]
        for name, value in scope.get("headers", [])
    ]
    return sent
