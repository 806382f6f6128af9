"""The session manager: the one place that owns every session's life.

The start flow (`app.start_flow`) calls it: `reserve()` checks drain, capacity and the id and
registers the session in one synchronous step (so a burst of concurrent starts can never pass
the cap), `start()` runs the bot in the session's own task under its duration limit,
`cancel()` ends one early, and `drain()` lets the running ones finish before cancelling the
rest. Every session ends in exactly one final state, logged once with its duration.

It knows no HTTP: refusals are `app.exceptions` errors, which the HTTP layer maps to statuses.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from loguru import logger

from app.arguments import SessionArguments
from app.exceptions import AtCapacity, Conflict, NotFound, SessionFailure, Unavailable
from app.logs import SessionLogContext
from app.metrics import KindMetrics, SessionMetrics
from app.session_tokens import SessionTokens, TokenRefused


class BotRunner(Protocol):
    """What runs a session's bot: the loaded bot itself (`app.bot_loader.Bot`, on this loop)
    or a runner that runs it in a worker process (`app.workers.runner.ProcessRunner`)."""

    @property
    def is_async(self) -> bool: ...

    async def run(self, args: SessionArguments) -> None: ...


class SessionKind(StrEnum):
    PIPECAT = "pipecat"
    DAILY = "daily"
    WEBSOCKET = "websocket"
    WEBRTC = "webrtc"


class SessionState(StrEnum):
    PENDING = "pending"  # announced, waiting for its WebSocket or WebRTC offer
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


FINAL_STATES = (
    SessionState.COMPLETED,
    SessionState.FAILED,
    SessionState.TIMED_OUT,
    SessionState.CANCELLED,
)
MAX_SESSION_ID_LENGTH = 128
# How long a cancelled bot may take to stop (a Pipecat pipeline tears down in well under a
# second) before its slot is released and its task abandoned with a warning.
STOP_GRACE_SECS = 2.0


@dataclass(eq=False)
class Session:
    id: str
    kind: SessionKind
    body: dict[str, Any]
    limit_secs: float
    state: SessionState = SessionState.PENDING
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_mono: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None  # runs the bot
    done: asyncio.Future[SessionState] | None = None  # the final state, once recorded
    end_reason: str = ""
    ending: SessionState | None = None  # the service's cause, once it ends the session
    finished: bool = False
    expiry: asyncio.TimerHandle | None = None  # an announced session's wait
    claim_token: str | None = field(default=None, repr=False)  # an announced session's key
    timer: asyncio.TimerHandle | None = None  # a running session's time limit, then grace
    counted: bool = False  # counted as started (and active) in the metrics
    start_clock: float = field(default_factory=time.monotonic)  # for the start latency
    # Told the service's cause before the bot's task is cancelled: a WebSocket session
    # closes its socket with the cause's code first (a bot's transport, cancelled, would
    # close it without one: Pipecat's closes with 1000).
    on_end: Callable[[SessionState, str], None] | None = None

    @property
    def age_secs(self) -> float:
        return time.monotonic() - self.started_mono


class SessionManager:
    def __init__(
        self,
        bot: BotRunner,
        *,
        max_sessions: int,
        session_timeout_secs: float,
        pending_timeout_secs: float,
        token_ttl_secs: float | None = None,
        metrics: SessionMetrics | None = None,
        client_gone: tuple[type[BaseException], ...] = (),
        stop_grace_secs: float = STOP_GRACE_SECS,
    ) -> None:
        """`client_gone`: exceptions that mean the session's client went away (a closed
        WebSocket): a normal end of the session, not a failure. `stop_grace_secs`: how long a
        bot may take to stop once the service ends its session. `token_ttl_secs`: how long an
        announced session's token is valid (default: `pending_timeout_secs`)."""
        self._bot = bot
        self._stop_grace = stop_grace_secs
        self._client_gone = client_gone
        self.metrics = metrics or SessionMetrics()
        final_states = [state.value for state in FINAL_STATES]
        self._kind_metrics = {
            kind: KindMetrics(self.metrics, kind.value, final_states) for kind in SessionKind
        }
        self._max = max_sessions
        self._timeout = session_timeout_secs
        self._pending_timeout = pending_timeout_secs
        self._tokens = SessionTokens(
            pending_timeout_secs if token_ttl_secs is None else token_ttl_secs
        )
        self._sessions: dict[str, Session] = {}
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    # -- queries ---------------------------------------------------------------------------

    @property
    def max_sessions(self) -> int:
        return self._max

    @property
    def active_count(self) -> int:
        return len(self._sessions)

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def full(self) -> bool:
        return len(self._sessions) >= self._max

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    # -- starting --------------------------------------------------------------------------

    def reserve(
        self,
        kind: SessionKind,
        *,
        session_id: str | None = None,
        body: dict[str, Any] | None = None,
        max_secs: float | None = None,
    ) -> Session:
        """Register a new session, or raise the error that says why not. Synchronous on
        purpose: the checks and the registration cannot interleave with another start."""
        if self._draining:
            self._reject(kind, "draining")
            raise Unavailable(
                "draining", "the service is shutting down and accepts no new sessions"
            )
        if len(self._sessions) >= self._max:
            self._reject(kind, "capacity")
            raise AtCapacity(
                "at_capacity",
                f"all {self._max} session slots are in use (MAX_SESSIONS); retry shortly",
                retry_after="1",
            )
        if session_id is None:
            session_id = str(uuid.uuid4())
        elif session_id in self._sessions:
            self._reject(kind, "duplicate_id")
            raise Conflict("session_exists", f"session {session_id} is already active")
        limit = self._timeout if max_secs is None else min(self._timeout, max_secs)
        session = Session(session_id, kind, body or {}, limit)
        self._sessions[session_id] = session
        self._idle.clear()
        return session

    def announce(self, session: Session) -> str:
        """Keep a reserved session waiting for its connection (a WebSocket, a WebRTC offer)
        and return the short-lived, single-use token that its connection must present to claim
        it. It waits no longer than its token lives: once the token has expired nobody can
        claim it."""
        loop = asyncio.get_running_loop()
        wait = min(self._pending_timeout, self._tokens.ttl_secs)
        session.expiry = loop.call_later(wait, self._expire, session)
        session.claim_token = self._tokens.issue(session.id)
        self._count_started(session)
        return session.claim_token

    def claim(
        self,
        session_id: str,
        token: str | None,
        kind: SessionKind = SessionKind.WEBSOCKET,
        *,
        trusted: bool = False,
    ) -> Session:
        """Hand an announced session to the connection that names it and presents its token
        (see `claimable`), and spend the token: a second use is refused."""
        session = self.claimable(session_id, token, kind, trusted=trusted)
        assert session.expiry is not None
        session.claim_token = None
        session.expiry.cancel()
        session.expiry = None
        session.start_clock = time.monotonic()
        return session

    def claimable(
        self,
        session_id: str,
        token: str | None,
        kind: SessionKind = SessionKind.WEBSOCKET,
        *,
        trusted: bool = False,
    ) -> Session:
        """The announced session `claim` would hand over, or the error it would raise; nothing
        is spent (a WebRTC offer is checked before its peer connection is made). The token is
        checked first (so a refusal says nothing of other sessions); an expired token ends its
        session, which nobody can claim any more. `trusted`: the caller presented the
        service's API key, which stands for the token."""
        session = self._sessions.get(session_id)
        if not trusted:
            try:
                self._tokens.check(token, session_id)
            except TokenRefused as refused:
                expired = refused.code == "session_token_expired"
                if expired and session is not None and session.expiry is not None:
                    self._expire(session)
                raise
        if session is None or session.kind is not kind:
            raise NotFound(
                "unknown_session",
                f"no announced session {session_id} is waiting: it ended, was cancelled, or "
                "its token was used",
            )
        taken = session.state is not SessionState.PENDING or session.expiry is None
        if trusted:
            if taken:
                raise Conflict("session_taken", f"session {session_id} is already connected")
            return session
        expected = session.claim_token
        if taken or expected is None or not hmac.compare_digest(token or "", expected):
            raise TokenRefused(
                "session_token_used",
                f"the session token was already used: session {session_id} is connected",
            )
        return session

    def wait_for(self, session: Session) -> asyncio.Future[SessionState]:
        """A future for the final state of a session not started yet (an announced one, which
        `POST /bot` waits on); `start()` keeps it."""
        if session.done is None:
            session.done = asyncio.get_running_loop().create_future()
        return session.done

    def release(self, session: Session) -> None:
        """Give back a reserved slot whose session never started (for example when creating
        its room failed): nothing is counted. An announced session, already counted, whose
        WebSocket went away during the handshake ends as cancelled instead."""
        if session.state is SessionState.PENDING and self._sessions.get(session.id) is session:
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            if session.counted:
                session.end_reason = (
                    "the WebSocket closed before the session started"
                    if session.kind is SessionKind.WEBSOCKET
                    else "its connection failed before the session started"
                )
                self._finish(session, SessionState.CANCELLED)
            else:
                self._remove(session)

    def start(self, session: Session, args: SessionArguments) -> asyncio.Future[SessionState]:
        """Run the bot for a reserved session in the session's own task, under its time
        limit. The returned future gets the session's final state once it is recorded."""
        loop = asyncio.get_running_loop()
        session.state = SessionState.RUNNING
        self._count_started(session)
        if session.done is None:
            session.done = loop.create_future()
        session.timer = loop.call_later(session.limit_secs, self._time_out, session)
        session.task = asyncio.create_task(self._run(session, args), name=f"session-{session.id}")
        return session.done

    async def _run(self, session: Session, args: SessionArguments) -> None:
        """The session's task. Whatever the bot raises (`SystemExit`, `KeyboardInterrupt` and
        other `BaseException`s included) ends this session only. When the service ended the
        session (cancel, time limit, drain), that cause is the final state, whatever the bot
        does with its cancellation."""
        with SessionLogContext(session.id):
            self._started(session)
            state = SessionState.COMPLETED
            try:
                await self._bot.run(args)
            except asyncio.CancelledError:
                state = SessionState.CANCELLED
            except BaseException as exc:
                if isinstance(exc, self._client_gone):
                    if not session.end_reason:
                        session.end_reason = "client disconnected"
                else:
                    state = self._failed(session, exc)
            if session.ending is not None and not self._bot.is_async:
                logger.warning(
                    "a plain (sync) bot cannot be interrupted: its slot is released now and its "
                    "thread runs until bot() returns"
                )
            self._finish(session, session.ending or state)

    def _started(self, session: Session) -> None:
        # Not inline in _run: loguru materializes its caller's frame object, which _run, a
        # coroutine alive for the whole session, would keep (about 240 bytes a session).
        self._kind_metrics[session.kind].observe_start_latency(
            time.monotonic() - session.start_clock
        )
        logger.info(
            "session started kind={} timeout={}s",
            session.kind.value,
            _fmt_secs(session.limit_secs),
        )

    def _failed(self, session: Session, exc: BaseException) -> SessionState:
        if isinstance(exc, SessionFailure):  # in a worker process: its reason, as it says
            if not exc.logged:
                logger.error("{}; ending this session only", exc.reason)
            session.end_reason = exc.reason
            return SessionState.FAILED
        logger.opt(exception=exc).error(
            "bot raised {}; ending this session only", type(exc).__name__
        )
        session.end_reason = f"bot raised {type(exc).__name__}"
        return SessionState.FAILED

    def _time_out(self, session: Session) -> None:
        session.timer = None
        reason = f"session exceeded its limit of {_fmt_secs(session.limit_secs)}s"
        self._end(session, SessionState.TIMED_OUT, reason)

    def _end(self, session: Session, state: SessionState, reason: str) -> None:
        """End a running session for a cause of the service's own: cancel its task, and if
        the task has not stopped within `stop_grace_secs` record the final state anyway."""
        if session.ending is not None or session.task is None or session.finished:
            return
        session.ending = state
        session.end_reason = reason
        if session.on_end is not None:
            session.on_end(state, reason)
        session.task.cancel()
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(self._stop_grace, self._abandon, session)

    def _abandon(self, session: Session) -> None:
        session.timer = None
        if session.finished or session.ending is None:
            return
        with SessionLogContext(session.id):
            logger.warning(
                "the bot did not stop within {}s of being {}: its slot is released now and its "
                "task is left running",
                _fmt_secs(self._stop_grace),
                "timed out" if session.ending is SessionState.TIMED_OUT else "cancelled",
            )
            self._finish(session, session.ending)

    def _expire(self, session: Session) -> None:
        if self._sessions.get(session.id) is session and session.state is SessionState.PENDING:
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            session.end_reason = (
                "no WebSocket claimed it in time"
                if session.kind is SessionKind.WEBSOCKET
                else "no WebRTC offer arrived in time"
            )
            with SessionLogContext(session.id):
                self._finish(session, SessionState.TIMED_OUT)

    def _finish(self, session: Session, state: SessionState) -> None:
        """Record the session's one final state; later calls do nothing."""
        if session.finished:
            return
        session.finished = True
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        session.state = state
        self._remove(session)
        duration = time.monotonic() - session.started_mono
        suffix = f" ({session.end_reason})" if session.end_reason else ""
        log = logger.warning if state is SessionState.FAILED else logger.info
        log(
            "session {} kind={} duration={:.3f}s{}",
            state.value,
            session.kind.value,
            duration,
            suffix,
        )
        metrics = self._kind_metrics[session.kind]
        metrics.active.dec()
        metrics.finished[state.value].inc()
        metrics.observe_duration(duration)
        if session.done is not None and not session.done.done():
            session.done.set_result(state)

    def _count_started(self, session: Session) -> None:
        if not session.counted:
            session.counted = True
            metrics = self._kind_metrics[session.kind]
            metrics.started.inc()
            metrics.active.inc()

    def _remove(self, session: Session) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        if not self._sessions:
            self._idle.set()

    def _reject(self, kind: SessionKind, reason: str) -> None:
        self.metrics.rejected.labels(kind.value, reason).inc()

    def count_unauthorized(self) -> None:
        self.metrics.rejected.labels("unknown", "unauthorized").inc()

    # -- ending ----------------------------------------------------------------------------

    def cancel(self, session_id: str, reason: str = "cancelled by request") -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound("unknown_session", f"no active session {session_id}")
        if session.task is not None:
            self._end(session, SessionState.CANCELLED, reason)
        elif session.counted:  # announced, never connected
            session.end_reason = reason
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            with SessionLogContext(session.id):
                self._finish(session, SessionState.CANCELLED)
        else:  # reserved, not started yet (its Daily room is being created): never counted
            self._remove(session)
        return session

    def begin_drain(self) -> None:
        self._draining = True

    async def drain(self, timeout_secs: float) -> None:
        """Stop new sessions, let running ones finish for up to `timeout_secs`, then cancel
        the rest and wait for them to record their final state (at most `stop_grace_secs`
        later: a bot that ignores its cancellation is abandoned)."""
        self._draining = True
        if self._sessions:
            logger.info(
                "draining: waiting up to {}s for {} session(s)",
                _fmt_secs(timeout_secs),
                len(self._sessions),
            )
            try:
                async with asyncio.timeout(timeout_secs):
                    await self._idle.wait()
            except TimeoutError:
                pass
        leftover = list(self._sessions.values())
        for session in leftover:
            self.cancel(session.id, "drain timeout reached")
        if self._sessions:
            await self._idle.wait()  # bounded: _abandon records every state within the grace


def _fmt_secs(value: float) -> str:
    return f"{value:g}"
