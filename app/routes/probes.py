"""Probes and the health summary: `/livez`, `/readyz`, `/health`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__
from app.errors import ErrorBody, error_response
from app.loop_monitor import WINDOW_SECS
from app.process_stats import process_figures
from app.schemas import Health, LoopFigures, ProcessFigures, Status
from app.state import services

router = APIRouter(tags=["probes"])


@router.get("/livez", summary="Liveness: 200 while the process serves", response_model=Status)
async def livez() -> Response:
    return _LIVE.response()


_LIVE = Status(status="ok")
_READY = Status(status="ready")


@router.get(
    "/readyz",
    summary="Readiness: 503 when draining, full, lagging, or bot.readyz() says no",
    response_model=Status,
    responses={503: {"model": ErrorBody, "description": "Not ready: `detail` says why."}},
)
async def readyz(request: Request) -> Response:
    svc = services(request)
    manager = svc.manager
    if manager.draining:
        return error_response(503, "not_ready", "draining: the service is shutting down")
    if manager.full:
        return error_response(
            503, "not_ready", f"at capacity: {manager.active_count}/{manager.max_sessions} sessions"
        )
    lag, limit = svc.loop.max_lag_secs(), svc.settings.max_loop_lag_secs
    if lag > limit:
        return error_response(
            503,
            "not_ready",
            f"event loop lag {lag:.2f}s in the last {WINDOW_SECS:g}s is above "
            f"MAX_LOOP_LAG_SECS ({limit:g}s)",
        )
    if svc.workers is not None and (starting := svc.workers.not_ready()) is not None:
        return error_response(503, "not_ready", starting)
    ready, why = await svc.readiness()
    if not ready:
        return error_response(503, "not_ready", why)
    return _READY.response()


@router.get("/health", summary="A JSON summary of the service", response_model=Health)
async def health(request: Request) -> Response:
    svc = services(request)
    manager = svc.manager
    return Health(
        status="draining" if manager.draining else ("full" if manager.full else "ok"),
        mode=svc.settings.session_mode,
        active_sessions=manager.active_count,
        max_sessions=manager.max_sessions,
        draining=manager.draining,
        version=__version__,
        process=ProcessFigures(**process_figures()),
        event_loop=LoopFigures(
            lag_secs=round(svc.loop.lag_secs(), 4),
            max_lag_secs=round(svc.loop.max_lag_secs(), 4),
            window_secs=WINDOW_SECS,
            workers_max_lag_secs=(
                None if svc.workers is None else round(svc.workers.max_lag_secs(), 4)
            ),
        ),
        telephony={
            name: "authenticated" if provider.authenticated else "unauthenticated"
            for name, provider in svc.providers.items()
        },
    ).response()


@router.get(
    "/metrics",
    summary="Prometheus metrics: sessions by kind and state, durations, start latency",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(services(request).manager.metrics.render(), media_type=CONTENT_TYPE_LATEST)
