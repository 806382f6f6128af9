"""The app factory: `create_app(settings)` builds the FastAPI app, loads the bot, and owns
the long-lived objects through the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.websockets import WebSocketDisconnect

from app import __version__
from app.bot_loader import Bot, ReadinessCheck, load_bot
from app.config import SessionIsolation, Settings
from app.daily import DailyClient
from app.errors import install_error_handlers
from app.exceptions import ClientGone
from app.loop_monitor import LoopMonitor
from app.metrics import LoopMetrics, SessionMetrics, WorkerMetrics
from app.openapi import install_openapi
from app.routes import console, probes, sessions, telephony, webrtc, websocket
from app.sessions import STOP_GRACE_SECS, BotRunner, SessionManager
from app.start_flow import StartFlow
from app.state import Services
from app.telephony.hangup import PhoneHangup
from app.telephony.providers import providers
from app.webrtc import WebRTCPeers

KILL_MARGIN_SECS = 1.0  # a killed worker is gone in milliseconds


def create_app(settings: Settings, bot: Bot | None = None) -> FastAPI:
    """Build the app. The bot module is imported here, before any port opens, so a broken
    `BOT_MODULE` stops start-up (`BotLoadError`)."""
    loaded = bot if bot is not None else load_bot(settings.bot_module)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = SessionMetrics()
        runner: BotRunner = loaded
        stop_grace = STOP_GRACE_SECS
        pool = None
        if settings.session_isolation is SessionIsolation.PROCESS:
            from app.workers.pool import WorkerPool
            from app.workers.runner import ProcessRunner

            pool = WorkerPool(
                settings.bot_module,
                prewarm=settings.prewarm_workers,
                max_sessions_per_worker=settings.worker_max_sessions,
                max_rss_mb=settings.worker_max_rss_mb,
                log_level=settings.log_level,
                log_format=settings.log_format,
                loop_lag_warn_secs=settings.loop_lag_warn_secs,
                metrics=WorkerMetrics(metrics),
            )
            runner = ProcessRunner(pool, STOP_GRACE_SECS)
            # The runner kills a worker that ignores its cancellation after STOP_GRACE_SECS;
            # the manager's own bound comes after that, so it never abandons a worker's task.
            stop_grace = STOP_GRACE_SECS + KILL_MARGIN_SECS
            pool.start()
        manager = SessionManager(
            runner,
            metrics=metrics,
            stop_grace_secs=stop_grace,
            max_sessions=settings.max_sessions,
            session_timeout_secs=settings.session_timeout_secs,
            pending_timeout_secs=settings.pending_session_timeout_secs,
            token_ttl_secs=settings.session_token_ttl_secs,
            client_gone=(WebSocketDisconnect, ClientGone),
        )
        daily = DailyClient.from_settings(settings)
        flow = StartFlow(manager, settings.session_mode, daily)
        readiness = ReadinessCheck(loaded.readiness, settings.readyz_timeout_secs)
        loop_monitor = LoopMonitor(settings.loop_lag_warn_secs, LoopMetrics(manager.metrics))
        loop_monitor.start()
        peers = WebRTCPeers(settings.ice_servers, in_workers=pool is not None)
        hangup = PhoneHangup(settings)
        app.state.services = Services(
            settings,
            loaded,
            manager,
            flow,
            readiness,
            loop_monitor,
            peers,
            daily=daily,
            providers=providers(settings),
            hangup=hangup,
            workers=pool,
        )
        try:
            yield
        finally:
            await manager.drain(0)
            await peers.close_all()
            if pool is not None:
                await pool.close()
            await loop_monitor.stop()
            await hangup.aclose()
            if daily is not None:
                await daily.aclose()

    app = FastAPI(
        title="botdock",
        version=__version__,
        summary="Session service for voice and chat bots (Pipecat Cloud compatible).",
        lifespan=lifespan,
        # No trailing-slash redirects: Starlette builds them from the Host header, which would
        # let a request send its client to another host.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["*"],
            # A page that starts a session reads its id from these (the body is the
            # transport's, app/routes/sessions.py).
            expose_headers=["X-Session-Id", "Location"],
            max_age=600,
        )
    install_openapi(app, bearer_auth=settings.api_key is not None)
    # The routers' routes go straight onto the app, not through `include_router`: FastAPI
    # matches an included router's routes in a second pass of its own, which cost a session
    # start about a tenth of its server CPU (docs/benchmarks.md). The routes are complete as
    # declared (neither router adds a prefix or a dependency at inclusion). Session routes
    # first: routes are tried in order, and a session start is the hot path.
    app.router.routes.extend(
        [
            *sessions.router.routes,
            *webrtc.router.routes,
            *probes.router.routes,
            *telephony.router.routes,
        ]
    )
    # Straight on the app, not as an included router: a WebSocket session keeps its handler's
    # call frames for its whole life, and FastAPI's included-router dispatch adds about 1 KB
    # of them to every connection (per-session memory, docs/benchmarks.md).
    app.add_api_websocket_route("/ws", websocket.websocket_session, name="websocket_session")
    for path in (
        f"{telephony.STREAM_PATH}/{{session_id}}",
        f"{telephony.STREAM_PATH}/{{session_id}}/{{token}}",
    ):
        app.add_api_websocket_route(path, telephony.phone_stream)
    if settings.console_enabled:
        # Last: the console's routes are never on a session's path.
        app.router.routes.extend(console.router.routes)
        app.mount("/console/static", console.static_files(), name="console_static")
    return app
