"""The one start flow: every way a session starts (`POST /start`, `POST /bot`, `WS /ws`, a
WebRTC offer) calls
`StartFlow`, which does reserve → room → start or announce, and gives the slot back on any
failure. Routes parse the request into a `StartAsk`, call the flow, and shape its `Started`.

The order is the contract: the request is checked first (mode, room, room options), then a
slot is reserved (so a full or draining service refuses before any call to Daily or any
handshake), then the session's room is created or its WebSocket accepted, then the bot
starts. Like the session engine, the flow knows no HTTP: it raises `app.exceptions` errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from app import webrtc
from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    SmallWebRTCSessionArguments,
    WebSocketSessionArguments,
)
from app.config import SessionMode
from app.daily import DailyClient, SessionRoom, room_name
from app.exceptions import BadRequest, InvalidRequest, Unavailable
from app.modes import Entry, Room, Transport, session_kind
from app.room_options import RoomOptions, room_options
from app.sessions import Session, SessionKind, SessionManager, SessionState


@dataclass(frozen=True)
class StartAsk:
    """What a caller asks for, parsed from its request."""

    entry: Entry
    body: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None  # the caller's own id; None: a UUID4 is made
    max_secs: float | None = None  # a time limit below SESSION_TIMEOUT_SECS
    room: Room | None = None  # a Daily room the caller already has
    create_room: bool = False  # asked for a Daily room (createDailyRoom)
    room_properties: dict[str, Any] | None = None
    token_properties: dict[str, Any] | None = None
    room_fields: str = "room_url and token"  # how this entry's caller sends a room, for errors
    transport: Transport | None = None  # the kind the request named; None: the mode decides
    webrtc: bool = False  # /start or /bot asking for a WebRTC session: announced, the offer runs it


@dataclass(frozen=True)
class Started:
    """A started (or announced) session and what its caller needs to join it."""

    session: Session
    room: Room | None = None  # the Daily room the bot joins
    caller_token: str | None = field(default=None, repr=False)  # the caller's Daily token
    done: asyncio.Future[SessionState] | None = None  # its final state; None: announced
    claim_token: str | None = field(default=None, repr=False)  # an announced session's key


class StartFlow:
    def __init__(
        self, manager: SessionManager, mode: SessionMode, daily: DailyClient | None
    ) -> None:
        self._manager = manager
        self._mode = mode
        self._daily = daily

    async def start(self, ask: StartAsk) -> Started:
        """Start a session over HTTP: its bot runs in the background (`Started.done` gets
        its final state), or, in `websocket` mode, it is announced and waits for its
        WebSocket."""
        if ask.webrtc:
            return self._announce_webrtc(ask)
        wants_room = ask.room is not None or ask.create_room
        kind = session_kind(self._mode, ask.entry, wants_room, ask.transport)
        plan = self._room_plan(kind, ask)
        token_plan = self._caller_token_plan(kind, ask)
        session = self._manager.reserve(
            kind, session_id=ask.session_id, body=ask.body, max_secs=ask.max_secs
        )
        if kind is SessionKind.WEBSOCKET:
            return Started(session, claim_token=self._manager.announce(session))
        room, caller_token = ask.room, None
        if plan is not None:
            created = await self._create_room(session, *plan)
            room, caller_token = Room(created.url, created.bot_token), created.caller_token
        elif token_plan is not None and room is not None:
            caller_token = await self._create_caller_token(session, room, *token_plan)
        done = self._manager.start(session, self._arguments(session, room))
        return Started(session, room, caller_token, done)

    async def start_websocket(
        self,
        ask: StartAsk,
        websocket: Any,
        accept: Callable[[], Awaitable[bool]],
        *,
        claim: str | None = None,
        claim_token: str | None = None,
        detect: Callable[[], Awaitable[str | None]] | None = None,
        handshake: Callable[[Session], Awaitable[tuple[str | None, Any]]] | None = None,
    ) -> Started | None:
        """Start a session on a WebSocket: a new one, or the announced session named `claim`
        (with the `claim_token` that announcing it gave).
        The socket is accepted (`accept`) only once a slot is held; None when the handshake
        failed, with the slot given back. `detect`, when given, is awaited once the socket is
        accepted: the arguments' `transport_type` (`app.ws_detect`). `handshake`, in its place,
        gives `transport_type` and `call_data` (a phone call's stream, `app.telephony`)."""
        session_kind(self._mode, Entry.WEBSOCKET, False)
        if claim is not None:
            session = self._manager.claim(claim, claim_token)
        else:
            session = self._manager.reserve(
                SessionKind.WEBSOCKET,
                session_id=ask.session_id,
                body=ask.body,
                max_secs=ask.max_secs,
            )
        try:
            accepted = await accept()
        except BaseException:
            self._manager.release(session)
            raise
        if not accepted:
            self._manager.release(session)
            return None
        call_data = None
        try:
            if handshake is not None:
                transport_type, call_data = await handshake(session)
            else:
                transport_type = None if detect is None else await detect()
        except BaseException:
            self._manager.release(session)
            raise
        self._still_reserved(session, "before it started")
        args = WebSocketSessionArguments(
            session_id=session.id, websocket=websocket, body=session.body, call_data=call_data
        )
        args.transport_type = transport_type
        return Started(session, done=self._manager.start(session, args))

    def _announce_webrtc(self, ask: StartAsk) -> Started:
        """A WebRTC session waits for its offer (`start_webrtc`), as Pipecat's runner and
        Pipecat Cloud do it. `POST /bot` waits for its final state (`Started.done`)."""
        webrtc.require()
        session_kind(self._mode, Entry.WEBRTC, ask.room is not None or ask.create_room)
        session = self._manager.reserve(
            SessionKind.WEBRTC, session_id=ask.session_id, body=ask.body, max_secs=ask.max_secs
        )
        token = self._manager.announce(session)
        done = self._manager.wait_for(session) if ask.entry is Entry.BOT else None
        return Started(session, done=done, claim_token=token)

    async def start_webrtc(
        self,
        ask: StartAsk,
        offer: webrtc.Offer,
        peers: webrtc.WebRTCPeers,
        *,
        claim: str | None = None,
        claim_token: str | None = None,
        trusted: bool = False,
    ) -> tuple[Started, dict[str, Any]]:
        """Start a session on a WebRTC offer: a new one, or the announced session named
        `claim` (with its token, or `trusted`: the caller presented the API key). Returns the
        session and the SDP answer. A new session's slot is held before the peer connection
        is made; an announced one is checked first and claimed once its peer answered, so a
        malformed offer leaves it waiting for a good one."""
        webrtc.require()
        session_kind(self._mode, Entry.WEBRTC, False)
        if claim is not None:
            self._manager.claimable(claim, claim_token, SessionKind.WEBRTC, trusted=trusted)
            connection = await peers.open(offer)
            try:
                session = self._manager.claim(
                    claim, claim_token, SessionKind.WEBRTC, trusted=trusted
                )
            except BaseException:
                peers.close(connection)
                raise
        else:
            session = self._manager.reserve(
                SessionKind.WEBRTC,
                session_id=ask.session_id,
                body=ask.body,
                max_secs=ask.max_secs,
            )
            try:
                connection = await peers.open(offer)
            except BaseException:
                self._manager.release(session)
                raise
            try:
                self._still_reserved(session, "while its peer connection was being made")
            except BaseException:
                peers.close(connection)
                raise
        args = SmallWebRTCSessionArguments(
            session_id=session.id, webrtc_connection=connection, body=ask.body or session.body
        )
        remote = isinstance(connection, webrtc.RemotePeer)
        answer = None if remote else webrtc.answer_of(connection)
        if not remote:
            peers.add(session.id, connection)
        done = self._manager.start(session, args)
        # The peer connection is closed when the session ends, whatever ended it.
        done.add_done_callback(lambda _: peers.close(connection))
        if remote:  # SESSION_ISOLATION=process: the worker running the session answers
            answer = await connection.answered(session.id, done)
            if not done.done():
                peers.add(session.id, connection)
        assert answer is not None
        return Started(session, done=done), answer

    def _room_plan(
        self, kind: SessionKind, ask: StartAsk
    ) -> tuple[DailyClient, RoomOptions] | None:
        """The client and options to create this session's room with, or None when it needs
        no room of ours."""
        if kind is not SessionKind.DAILY or ask.room is not None:
            return None
        daily = self._daily
        if daily is None:
            if ask.create_room:
                raise BadRequest(
                    "daily_room_required",
                    "createDailyRoom needs DAILY_API_KEY, which is not set on this service: set "
                    "it, or send room_url and token for a room you already have",
                )
            raise BadRequest(
                "daily_room_required",
                f"a Daily session needs a room: send {ask.room_fields}, or set DAILY_API_KEY so "
                "the service creates one",
            )
        if ask.entry is Entry.BOT:
            # Only the bot's token: /bot answers when the bot returns, too late for a caller's.
            return daily, room_options(None, None, caller_token=False)
        return daily, room_options(ask.room_properties, ask.token_properties)

    def _caller_token_plan(
        self, kind: SessionKind, ask: StartAsk
    ) -> tuple[DailyClient, RoomOptions] | None:
        """For a room the caller brought to `POST /start`: the client and options to make the
        caller's participant token with, or None (no DAILY_API_KEY: the caller gets no token;
        docs/daily.md). The bot keeps the token the caller sent."""
        if kind is not SessionKind.DAILY or ask.room is None or ask.entry is not Entry.START:
            return None
        if self._daily is None:
            return None
        if not room_name(ask.room.url):
            raise InvalidRequest(
                "invalid_request",
                "room_url names no Daily room: expected https://<domain>.daily.co/<room>",
            )
        return self._daily, room_options(None, ask.token_properties)

    async def _create_caller_token(
        self, session: Session, room: Room, daily: DailyClient, options: RoomOptions
    ) -> str:
        """The caller's participant token for its own room. On any failure the slot is given
        back without counting anything, and no bot starts."""
        try:
            with logger.contextualize(session_id=session.id):
                token = await daily.create_caller_token(
                    room.url, options.token_properties, limit_secs=session.limit_secs
                )
        except BaseException:
            self._manager.release(session)
            raise
        self._still_reserved(session, "while its caller's Daily token was being created")
        return token

    async def _create_room(
        self, session: Session, daily: DailyClient, options: RoomOptions
    ) -> SessionRoom:
        """Create the room of a reserved session. On any failure the slot is given back
        without counting anything, and no bot starts."""
        try:
            with logger.contextualize(session_id=session.id):
                created = await daily.create_session_room(
                    options.room_properties,
                    options.token_properties if options.caller_token else None,
                    limit_secs=session.limit_secs,
                )
        except BaseException:
            self._manager.release(session)
            raise
        self._still_reserved(session, "while its Daily room was being created")
        return created

    def _still_reserved(self, session: Session, when: str) -> None:
        """After an await between reserving and starting: a session cancelled (or drained)
        meanwhile is not started."""
        if self._manager.get(session.id) is not session:
            raise Unavailable("session_cancelled", f"session {session.id} was cancelled {when}")

    @staticmethod
    def _arguments(session: Session, room: Room | None) -> SessionArguments:
        if room is not None:
            return DailySessionArguments(
                session_id=session.id, room_url=room.url, token=room.token, body=session.body
            )
        return PipecatSessionArguments(session_id=session.id, body=session.body)
