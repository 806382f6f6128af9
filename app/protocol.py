"""uvicorn's HTTP protocol with two guards it lacks: a deadline for a client to finish sending
its request headers (so idle or slowloris connections are closed), and a cap on the total size
of the headers. Both answer with the service's JSON error shape, then close the connection, and
so do uvicorn's own 400s for requests it cannot parse."""

from __future__ import annotations

import asyncio
import json

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Refused(Exception):
    def __init__(self, status: int, reason: bytes, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.code, self.detail = status, reason, code, detail


def guarded_protocol(header_timeout_secs: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0
        _pending_refusal: _Refused | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
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

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own answer to a request it cannot parse, in the one JSON error shape.
            self._refuse(_Refused(400, b"Bad Request", "bad_request", msg))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            if self._header_timer is None:  # the next request on a kept-alive connection
                self._arm_header_timer()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm_header_timer()
            super().on_headers_complete()

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

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout_secs, self._headers_late)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being served; its body has its own deadline
            self._refuse(
                _Refused(
                    408,
                    b"Request Timeout",
                    "request_timeout",
                    f"request headers not received within {header_timeout_secs:g}s "
                    "(CLIENT_TIMEOUT_SECS)",
                )
            )

        def _refuse(self, refused: _Refused) -> None:
            self._disarm_header_timer()
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
