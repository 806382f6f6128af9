"""WebRTC peers: an SDP offer becomes Pipecat's `SmallWebRTCConnection` (aiortc), kept by its
`pc_id` with the session it belongs to, so renegotiations and trickled ICE candidates reach
it, and closed when its session ends.

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

from app.exceptions import InvalidRequest, NotFound, NotInstalled

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

    def __init__(self, ice_servers: list[dict[str, Any]]) -> None:
        self._ice_servers = ice_servers
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
        from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection

        servers = [IceServer(**server) for server in self._ice_servers]
        connection: Any = SmallWebRTCConnection(ice_servers=servers or None)
        try:
            await connection.initialize(sdp=offer.sdp, type=offer.type)
        except Exception as exc:
            await self._close_quietly(connection)
            raise _refused(exc) from None
        if connection.get_answer() is None:
            await self._close_quietly(connection)
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
        task = asyncio.get_running_loop().create_task(self._close_quietly(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        for peer in list(self._peers.values()):
            self.close(peer.connection)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=5)

    @staticmethod
    async def _close_quietly(connection: Any) -> None:
        try:
            await connection.disconnect()
        except Exception as exc:  # a peer that never connected may fail to say goodbye
            logger.debug("closing a peer connection: {}", _why(exc))
            with contextlib.suppress(Exception):
                await connection.pc.close()


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
    return InvalidRequest("invalid_offer", f"the SDP offer was refused: {_why(exc)}")


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
