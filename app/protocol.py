"""uvicorn's HTTP protocol with two guards it lacks: a deadline for a client to send each
request's headers and then its body (so idle, slowloris and slow-body connections are closed,
on every route, pipelined or not), and a cap on the total size of the headers. Both answer
with the service's JSON error shape, then close the connection, and so do uvicorn's own 400s
for requests it cannot parse.

The deadline runs while the service reads from the connection: uvicorn stops reading while it
serves a request with pipelined ones queued behind it (or while a route leaves a large body
unread), and then the client cannot be late. A late client is not read from any more; it is
answered 408 if nothing is being answered on the connection, else once the responses under way
are sent (or, when the late part is the body of a request already answered, the connection is
just closed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import httptools
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application

# How long a route that is still reading a late body is left to answer before the protocol
# answers 408 for it. The JSON routes answer 408 themselves at the same deadline.
ROUTE_ANSWER_GRACE_SECS = 1.0

_Part = Literal["headers", "body"]


class _Refused(Exception):
    def __init__(self, status: int, reason: bytes, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.code, self.detail = status, reason, code, detail


class _Flow(FlowControl):
    """uvicorn's read/write flow control, reporting when reading stops or starts, and able to
    stop reading for good (`hold`)."""

    def __init__(self, transport: asyncio.Transport, on_change: Callable[[], None]) -> None:
        super().__init__(transport)
        self._on_change = on_change
        self.held = False

    def pause_reading(self) -> None:
        if not self.read_paused:
            super().pause_reading()
            self._on_change()

    def resume_reading(self) -> None:
        if self.read_paused and not self.held:
            super().resume_reading()
            self._on_change()

    def hold(self) -> None:
        self.held = True
        super().pause_reading()


def guarded_protocol(client_timeout_secs: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""

    def late(part: _Part) -> _Refused:
        return _Refused(
            408,
            b"Request Timeout",
            "request_timeout",
            f"request {part} not received within {client_timeout_secs:g}s (CLIENT_TIMEOUT_SECS)",
        )

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        flow: _Flow
        _header_bytes = 0
        _pending_refusal: _Refused | None = None
        # What the client owes now, and the deadline for it (None while not reading).
        _owed: _Part | None = "headers"
        _deadline: asyncio.TimerHandle | None = None
        # The request whose ASGI task runs last; what to answer once the responses under
        # way are sent; the grace left to a route reading a late body.
        _serving: RequestResponseCycle | None = None
        _answer_after: _Refused | None = None
        _route_grace: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.flow = _Flow(transport, self._track_deadline)
            self._track_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # uvicorn's own data_received, except that a refusal raised by our callbacks (the
            # parser wraps it in HttpParserCallbackError) is answered as itself, not as a 400.
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                refused, self._pending_refusal = self._pending_refusal, None
                if refused is not None:
                    self._refuse(refused)
                else:
                    self.logger.warning("Invalid HTTP request received.")
                    self.send_400_response("invalid HTTP request")
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
            self._track_deadline()

        def handle_websocket_upgrade(self) -> None:
            self._owed = None
            self._cancel_timers()
            super().handle_websocket_upgrade()

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own answer to a request it cannot parse, in the one JSON error shape.
            self._refuse(_Refused(400, b"Bad Request", "bad_request", msg))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            # The first request's deadline runs from the connection; a kept-alive or
            # pipelined one's from its first byte.
            self._owe("headers")

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            upgrade = self.parser.should_upgrade() and self._should_upgrade()
            self._owe(None if upgrade else "body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._owe(None)

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
            self._serving = cycle
            super()._start_asgi_task(cycle, app)

        def on_response_complete(self) -> None:
            if self._route_grace is not None:
                self._route_grace.cancel()
                self._route_grace = None
            if self._answer_after is None or self.pipeline or self.transport.is_closing():
                super().on_response_complete()
                return
            # Every request received in time is answered: now the late one.
            self.server_state.total_requests += 1
            refused, self._answer_after = self._answer_after, None
            self._refuse(refused)

        def _count(self, size: int) -> None:
            self._header_bytes += size
            if self._header_bytes > max_header_bytes:
                refused = _Refused(
                    431,
                    b"Request Header Fields Too Large",
                    "headers_too_large",
                    f"request headers are larger than MAX_HEADER_BYTES ({max_header_bytes} bytes)",
                )
                self._pending_refusal = refused
                raise refused

        def _owe(self, part: _Part | None) -> None:
            if part != self._owed:
                self._owed = part
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None

        def _track_deadline(self) -> None:
            """Run the deadline for what the client owes while the service reads from it."""
            if self._owed is None or self.flow.read_paused or self.transport.is_closing():
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None
            elif self._deadline is None:
                self._deadline = self.loop.call_later(client_timeout_secs, self._late)

        def _cancel_timers(self) -> None:
            for timer in (self._deadline, self._route_grace):
                if timer is not None:
                    timer.cancel()
            self._deadline = self._route_grace = None

        def _late(self) -> None:
            self._deadline = None
            part = self._owed
            if part is None or self.transport.is_closing():
                return
            self.flow.hold()  # whatever the client sends now is not read
            serving = self._serving
            if serving is None or serving.response_complete:
                if part == "body" and serving is not None and serving is self.cycle:
                    self.transport.close()  # its request is answered: nothing to say
                else:
                    self._refuse(late(part))
                return
            if part == "headers" or serving is not self.cycle:
                # Late behind a request being served: answered after it and the requests
                # queued behind it (a late body's own request is dropped from the queue).
                if part == "body":
                    self.pipeline = type(self.pipeline)(
                        queued for queued in self.pipeline if queued[0] is not self.cycle
                    )
                self._answer_after = late(part)
                return
            # The body of the request being served: close once it is answered. A route still
            # reading it gets a grace to answer, then the protocol answers for it.
            serving.keep_alive = False
            if not serving.response_started:
                self._route_grace = self.loop.call_later(
                    ROUTE_ANSWER_GRACE_SECS, self._answer_for_route, serving, late(part)
                )

        def _answer_for_route(self, cycle: RequestResponseCycle, refused: _Refused) -> None:
            self._route_grace = None
            if cycle.response_started or self.transport.is_closing():
                return
            # What the route sends from now on is dropped; it reads a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
            self._refuse(refused)

        def _refuse(self, refused: _Refused) -> None:
            self._owed = None
            self._cancel_timers()
            if self.transport.is_closing():
                return
            body = json.dumps({"error": refused.code, "detail": refused.detail}).encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (refused.status, refused.reason, len(body), body)
            )
            self.transport.close()

    return GuardedHttpToolsProtocol
