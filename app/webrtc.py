"""WebRTC peers: an SDP offer becomes Pipecat's `SmallWebRTCConnection` (aiortc), kept by its
`pc_id` with the session it belongs to, so renegotiations and trickled ICE candidates reach
it, and closed when its session ends.

With `SESSION_ISOLATION=process` the peer lives in the worker that runs its session: `open`
gives a `RemotePeer`, the server's stand-in for it, which the runner (`app.workers.runner`)
connects to that worker's channel; offers and candidates travel there, answers come back.

Optional at the edge: Pipecat's WebRTC extra (`pipecat-ai[webrtc]`, which brings aiortc) is
imported only when an offer arrives; without it `require()` raises `NotInstalled`, which
the caller gets as a clear error. Like the start flow, this module knows no HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from loguru import logger

from app.exceptions import InvalidRequest, NotFound, NotInstalled, Unavailable

INSTALL_HINT = (
    "WebRTC sessions need Pipecat's WebRTC extra, which is not installed: install "
    "pipecat-ai[webrtc] (in this project: uv sync --group pipecat)"
)


@dataclass(frozen=True)
class Offer:
    """An SDP offer as a SmallWebRTC client sends it."""

    sdp: str
    type: str = "offer"
    pc_id: str | None = None
    restart_pc: bool = False


@dataclass(frozen=True)
class Candidate:
    """A trickled ICE candidate; an empty `candidate` marks the end of the candidates."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass
class Peer:
    session_id: str
    connection: Any  # pipecat.transports.smallwebrtc.connection.SmallWebRTCConnection


def available() -> bool:
    return (
        importlib.util.find_spec("aiortc") is not None
        and importlib.util.find_spec("pipecat") is not None
        and importlib.util.find_spec("pipecat.transports.smallwebrtc") is not None
    )


def require() -> None:
    """Raise `NotInstalled` unless WebRTC sessions can be served."""
    if not available():
        raise NotInstalled("webrtc_unavailable", INSTALL_HINT)


class WebRTCPeers:
    """The service's peer connections by `pc_id`."""

    def __init__(self, ice_servers: list[dict[str, Any]], *, in_workers: bool = False) -> None:
        self._ice_servers = ice_servers
        self._in_workers = in_workers  # SESSION_ISOLATION=process: each worker makes its peer
        self._peers: dict[str, Peer] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def ice_servers(self) -> list[dict[str, Any]]:
        return self._ice_servers

    def __len__(self) -> int:
        return len(self._peers)

    async def open(self, offer: Offer) -> Any:
        """A new peer connection answering `offer` (not registered yet: `add` does, once its
        session holds it). A malformed offer is an `InvalidRequest`."""
        require()
        check_sdp(offer.sdp)
        if self._in_workers:
            return RemotePeer(offer, self._ice_servers)
        from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection

        servers = [IceServer(**server) for server in self._ice_servers]
        connection: Any = SmallWebRTCConnection(ice_servers=servers or None)
        try:
            await connection.initialize(sdp=offer.sdp, type=offer.type)
        except Exception as exc:
            await close_quietly(connection)
            raise _refused(exc) from None
        if connection.get_answer() is None:
            await close_quietly(connection)
            raise InvalidRequest("invalid_offer", "the SDP offer produced no answer")
        return connection

    def add(self, session_id: str, connection: Any) -> None:
        """Register a session's connection; it leaves the registry when the peer closes."""
        pc_id = connection.pc_id
        self._peers[pc_id] = Peer(session_id, connection)

        @connection.event_handler("closed")  # type: ignore[untyped-decorator]
        async def forget(conn: Any) -> None:
            peer = self._peers.get(pc_id)
            if peer is not None and peer.connection is conn:
                del self._peers[pc_id]

    def find(self, pc_id: str, session_id: str | None = None) -> Peer:
        """The peer `pc_id` (of session `session_id`, when given)."""
        peer = self._peers.get(pc_id)
        if peer is None or (session_id is not None and peer.session_id != session_id):
            where = "" if session_id is None else f" in session {session_id}"
            raise NotFound("unknown_peer", f"no peer connection {pc_id[:80]!r}{where}")
        return peer

    async def renegotiate(self, peer: Peer, offer: Offer) -> dict[str, Any]:
        check_sdp(offer.sdp)
        try:
            await peer.connection.renegotiate(
                sdp=offer.sdp, type=offer.type, restart_pc=offer.restart_pc
            )
        except Exception as exc:
            raise _refused(exc) from None
        return answer_of(peer.connection)

    async def add_candidates(self, peer: Peer, candidates: list[Candidate]) -> None:
        from aiortc.sdp import candidate_from_sdp

        parsed: list[Any] = []
        for index, c in enumerate(candidates):
            if not c.candidate:
                parsed.append(None)  # end of candidates, as aiortc takes it
                continue
            try:
                candidate = candidate_from_sdp(c.candidate.removeprefix("candidate:"))
            except Exception:
                raise InvalidRequest(
                    "invalid_candidate", f"candidates.{index}.candidate is not an ICE candidate"
                ) from None
            candidate.sdpMid = c.sdp_mid
            candidate.sdpMLineIndex = c.sdp_mline_index
            parsed.append(candidate)
        for candidate in parsed:
            await peer.connection.add_ice_candidate(candidate)

    def close(self, connection: Any) -> None:
        """Close a session's peer connection (its session ended), in the background."""
        pc_id = connection.pc_id
        peer = self._peers.get(pc_id)
        if peer is not None and peer.connection is connection:
            del self._peers[pc_id]
        task = asyncio.get_running_loop().create_task(close_quietly(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        for peer in list(self._peers.values()):
            self.close(peer.connection)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)


async def close_quietly(connection: Any) -> None:
    """Close a `SmallWebRTCConnection`, even one that never connected."""
    try:
        await connection.disconnect()
    except Exception as exc:  # a peer that never connected may fail to say goodbye
        logger.debug("closing a peer connection: {}", why(exc))
        with contextlib.suppress(Exception):
            await connection.pc.close()


class PeerRefused(Exception):
    """A worker's peer connection refused an offer; the message says why."""


class RemotePeer:
    """A peer connection that lives in the worker running its session, as the server sees it:
    the same methods the server calls on a `SmallWebRTCConnection`, sent over that worker's
    channel (messages `answer`, `offer`, `candidate`: `app.workers.protocol`). The worker
    closes the real connection when its session ends."""

    def __init__(self, offer: Offer, ice_servers: list[dict[str, Any]]) -> None:
        self.offer = offer
        self.ice_servers = ice_servers
        self.pc_id = ""
        self._answer: dict[str, Any] | None = None
        self._channel: Any = None  # the worker's channel, once its session started there
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 1
        self._closed_handlers: list[Any] = []
        self._first = self._expect(0)

    def start_fields(self) -> dict[str, Any]:
        """What a worker's `start` message carries to make the peer."""
        return {
            "offer": {"sdp": self.offer.sdp, "type": self.offer.type},
            "ice_servers": self.ice_servers,
        }

    def attach(self, channel: Any) -> None:
        self._channel = channel

    def on_answer(self, message: dict[str, Any]) -> None:
        """The worker's `answer` message (to the first offer: id 0, or a renegotiation)."""
        future = self._replies.pop(int(message.get("id", 0)), None)
        if future is None or future.done():
            return
        if message.get("error") is not None:
            future.set_exception(PeerRefused(str(message["error"])))
        else:
            answer = {"sdp": message["sdp"], "type": message["type"], "pc_id": message["pc_id"]}
            self.pc_id = answer["pc_id"]
            self._answer = answer
            future.set_result(answer)

    def detach(self) -> None:
        """Its session ended: no answer will come."""
        self._channel = None
        for future in self._replies.values():
            if not future.done():
                future.set_exception(PeerRefused("its session ended"))
        self._replies.clear()

    async def answered(self, session_id: str, done: asyncio.Future[Any]) -> dict[str, Any]:
        """The worker's answer to the first offer; an `InvalidRequest` if it refused it."""
        await asyncio.wait({self._first, done}, return_when=asyncio.FIRST_COMPLETED)
        if not self._first.done():
            raise Unavailable(
                "session_ended", f"session {session_id} ended before its peer connection answered"
            )
        try:
            return self._first.result()
        except PeerRefused as exc:
            raise _refused(exc) from None

    async def renegotiate(self, *, sdp: str, type: str, restart_pc: bool) -> None:
        number, self._next = self._next, self._next + 1
        future = self._expect(number)
        self._send({"t": "offer", "id": number, "sdp": sdp, "type": type, "restart_pc": restart_pc})
        await future

    async def add_ice_candidate(self, candidate: Any) -> None:
        from aiortc.sdp import candidate_to_sdp

        message: dict[str, Any] = {"t": "candidate", "candidate": None}
        if candidate is not None:
            message.update(
                candidate=candidate_to_sdp(candidate),
                sdp_mid=candidate.sdpMid,
                sdp_mline_index=candidate.sdpMLineIndex,
            )
        self._send(message)

    def get_answer(self) -> dict[str, Any] | None:
        return self._answer

    def event_handler(self, name: str) -> Any:
        def register(handler: Any) -> Any:
            if name == "closed":
                self._closed_handlers.append(handler)
            return handler

        return register

    async def disconnect(self) -> None:
        """Forget it here; the worker closes the real connection as its session ends."""
        self.detach()
        handlers, self._closed_handlers = self._closed_handlers, []
        for handler in handlers:
            await handler(self)

    def _expect(self, number: int) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[number] = future
        return future

    def _send(self, message: dict[str, Any]) -> None:
        if self._channel is None:
            raise PeerRefused("its session ended")
        try:
            self._channel.write(message)
        except Exception:  # the worker's channel closed: its session is ending
            raise PeerRefused("its session ended") from None


def check_sdp(sdp: str) -> None:
    """The little aiortc does not check itself: it answers any text, even one with no media."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != "v=0":
        raise InvalidRequest(
            "invalid_offer", "sdp is not an SDP session description (it starts with v=0)"
        )
    if not any(line.startswith("m=") for line in lines):
        raise InvalidRequest("invalid_offer", "the SDP offer has no media section (m=)")


def answer_of(connection: Any) -> dict[str, Any]:
    answer: dict[str, Any] = connection.get_answer()
    return {"sdp": answer["sdp"], "type": answer["type"], "pc_id": answer["pc_id"]}


def _refused(exc: BaseException) -> InvalidRequest:
    return InvalidRequest("invalid_offer", f"the SDP offer was refused: {why(exc)}")


def why(exc: BaseException) -> str:
    if isinstance(exc, PeerRefused):  # a worker's words, already shaped by `why`
        return str(exc)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
