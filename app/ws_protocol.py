"""uvicorn's WebSocket protocol (websockets' sans-I/O implementation, the one `ws="auto"`
picks) with bounds on what a peer can make it hold.

uvicorn answers every ping with a pong written at once, whether or not the peer reads: a peer
that sends pings and never reads grows the write buffer without limit. Here, pongs queued
while the transport's buffer is above its high-water mark are counted, and past
`MAX_UNSENT_PONG_BYTES` the connection is dropped. What the application sends is already
bounded (uvicorn's `send` waits while the buffer is above the mark).

Once the service has sent its close frame (a refused socket is accepted and closed at once),
pings are no longer answered, and a peer that has not answered the close frame within
`CLOSE_TIMEOUT_SECS` is dropped (uvicorn waits 10 s, answering pings meanwhile, and then
closes, which never completes while the peer does not read what is left to send). A keepalive
ping that goes unanswered ends the same way."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# Pongs queued while the peer is not reading, past which its connection is dropped: some
# 2,000 pongs of the largest size, far more than a peer that reads ever has waiting.
MAX_UNSENT_PONG_BYTES = 256 * 1024
# How long a peer has to answer the service's close frame (or, after a keepalive ping went
# unanswered, to read it) before its connection is dropped: a peer that reads answers within a
# round trip.
CLOSE_TIMEOUT_SECS = 2.0


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """The protocol class for `uvicorn.Config(ws=...)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT_SECS
        self._write_paused = False
        self._unsent_pongs = 0
        self._drop_timer: asyncio.TimerHandle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
            self._drop_timer = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_paused = True
        self._unsent_pongs = 0

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused = False

    def handle_ping(self) -> None:
        pongs = b"".join(self.conn.data_to_send())
        if self.close_sent or self.transport.is_closing():
            return  # closing: pings are no longer answered
        if self._write_paused:
            self._unsent_pongs += len(pongs)
            if self._unsent_pongs > MAX_UNSENT_PONG_BYTES:
                self.logger.warning(
                    "WebSocket peer sends pings without reading the pongs "
                    "(over %d bytes waiting): connection dropped",
                    MAX_UNSENT_PONG_BYTES,
                )
                self.transport.abort()
                return
        self.transport.write(pongs)

    async def send(self, message: ASGISendEvent) -> None:
        timer = self.close_timer
        await super().send(message)
        if self.close_timer is not None and self.close_timer is not timer:
            # uvicorn's deadline for the peer's close frame closes the transport, which
            # waits for the peer to read what is left: drop it instead.
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self._drop)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        if self.transport.is_closing() and self._drop_timer is None:
            self._drop_timer = self.loop.call_later(self.close_timeout, self._drop)

    def _drop(self) -> None:
        self.close_timer = self._drop_timer = None
        self.transport.abort()
