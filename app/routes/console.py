"""The dev console at `/` (CONSOLE_ENABLED): a static page and its prebuilt script, plus the two
facts the page cannot find out by itself. Not part of the API, so not in the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app import webrtc
from app.state import services

STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
# Where the small-webrtc transport sends its offer; the console offers WebRTC when it is served.
OFFER_PATH = "/api/offer"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/console/settings")
async def console_settings(request: Request) -> JSONResponse:
    """What the page needs before it starts anything: whether to ask for the API key, and
    whether this server takes WebRTC offers (it serves the offer route and Pipecat's
    SmallWebRTC transport is installed)."""
    offers = _serves_offers(request) and webrtc.available()
    return JSONResponse(
        {"apiKeyRequired": services(request).settings.api_key is not None, "webrtc": offers},
        headers={"Cache-Control": "no-store"},
    )


def _serves_offers(request: Request) -> bool:
    return any(getattr(route, "path", None) == OFFER_PATH for route in request.app.routes)


def static_files() -> StaticFiles:
    """The page's script and style, mounted at `/console/static`."""
    return StaticFiles(directory=STATIC)
