"""uvicorn with a graceful drain: the first SIGTERM/SIGINT stops new sessions and lets running
ones finish (up to `DRAIN_TIMEOUT_SECS`) while the server keeps answering, so `/readyz` says
503 and in-flight `POST /bot` calls get their response; a second signal exits at once."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import sys
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI
from loguru import logger

from app.config import Settings
from app.protocol import guarded_protocol
from app.sessions import STOP_GRACE_SECS
from app.state import Services
from app.ws_protocol import BoundedWebSocketProtocol

FORCED_EXIT_CODE = 1
# After the drain, how long uvicorn waits for connections to finish their last response.
CONNECTION_CLOSE_SECS = 5


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_timeout_secs: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_timeout = drain_timeout_secs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]
        await self._stop_leftover_tasks()

    async def _stop_leftover_tasks(self) -> None:
        """Cancel what the bot left running after every session ended, giving it the same
        grace as a session's bot. A task that ignores its cancellation would hold the exit
        for ever (asyncio waits for every task): the process exits without it, with a
        warning."""
        current = asyncio.current_task()
        leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leftover:
            return
        for task in leftover:
            task.cancel()
        _, pending = await asyncio.wait(leftover, timeout=STOP_GRACE_SECS)
        if pending:
            names = ", ".join(sorted(t.get_name() for t in pending)[:5])
            logger.warning(
                "{} task(s) ignored cancellation at exit ({}): exiting without them",
                len(pending),
                names,
            )
            logger.complete()
            sys.stderr.flush()
            os._exit(0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes, maybe inside a session's code: hand the
        # work to the event loop in an empty context, or the drain would inherit that
        # session's log context and tag the server's lines with its id.
        name = signal.Signals(sig).name
        loop = self._loop
        if loop is None or not self.started:
            self.should_exit = True  # not serving yet: plain shutdown
            return
        if self._draining:
            threading.Timer(2.0, os._exit, (FORCED_EXIT_CODE,)).start()  # if the loop is stuck
            loop.call_soon_threadsafe(self._force_exit, name, context=contextvars.Context())
            return
        self._draining = True
        loop.call_soon_threadsafe(self._start_drain, name, context=contextvars.Context())

    def _services(self) -> Services:
        services: Services = self._app.state.services
        return services

    def _start_drain(self, name: str) -> None:
        self._drain_task = asyncio.create_task(self._drain(name))

    async def _drain(self, name: str) -> None:
        manager = self._services().manager
        manager.begin_drain()
        logger.info(
            "{} received: draining {} session(s), up to {}s (a second signal exits at once)",
            name,
            manager.active_count,
            f"{self._drain_timeout:g}",
        )
        await manager.drain(self._drain_timeout)
        logger.info("drain complete: shutting down")
        self.should_exit = True

    def _force_exit(self, name: str) -> None:
        sessions = self._services().manager.sessions()
        for session in sessions:
            with logger.contextualize(session_id=session.id):
                logger.warning(
                    "session cancelled kind={} (forced exit on a second {})",
                    session.kind.value,
                    name,
                )
        logger.warning("second {}: exiting now with {} session(s) cut", name, len(sessions))
        logger.complete()
        sys.stderr.flush()
        os._exit(FORCED_EXIT_CODE)


def build_server(app: FastAPI, settings: Settings) -> DrainingServer:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # logging is ours: app.logs routes uvicorn through loguru
        access_log=settings.access_log,
        loop="auto",  # uvloop where installed
        http=guarded_protocol(settings.client_timeout_secs, settings.max_header_bytes),
        ws=BoundedWebSocketProtocol,
        ws_max_size=settings.ws_max_message_bytes,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=CONNECTION_CLOSE_SECS,
    )
    return DrainingServer(config, app, settings.drain_timeout_secs)
