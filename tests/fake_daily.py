"""A fake Daily REST API: a real HTTP server on loopback (a Starlette app under uvicorn, in a
background thread) that the service reaches through `DAILY_API_URL`.

It answers like Daily does (`POST /v1/rooms`, `POST /v1/meeting-tokens`, bearer auth, errors
as `{"error": ..., "info": ...}`), records every request (method, path, headers, JSON) and
every token it hands out, and can be told to answer the next requests to a path otherwise:
an error status, a garbage body, or slowly.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.server import free_port


@dataclass
class Reply:
    """A scripted answer: `json` or raw `body`, after `delay` seconds or once `held` is set
    (with neither `json` nor `body`, the normal answer then)."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    held: threading.Event | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Issued:
    properties: dict[str, Any]
    token: str


class FakeDaily:
    def __init__(self, key: str = "test-key") -> None:
        self.key = key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[Recorded] = []
        self.tokens: list[Issued] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._rooms = 0
        self._stopping = threading.Event()
        app = Starlette(
            routes=[
                Route("/v1/rooms", self._rooms_endpoint, methods=["POST"]),
                Route("/v1/meeting-tokens", self._tokens_endpoint, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-daily", daemon=True)

    # -- test-facing -----------------------------------------------------------------------

    def reply(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` ("/rooms" or "/meeting-tokens") with `replies`,
        in order; after them, answer normally again."""
        self._scripts.setdefault(path, []).extend(replies)

    def token(self, *, owner: bool) -> str:
        """The one token handed out with `is_owner` equal to `owner`."""
        (token,) = [t.token for t in self.tokens if bool(t.properties.get("is_owner")) is owner]
        return token

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def start(self) -> FakeDaily:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Daily API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(10)

    # -- the fake API ----------------------------------------------------------------------

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            Recorded(request.method, request.url.path, dict(request.headers), body)
        )
        return body

    async def _scripted(self, path: str) -> Response | None:
        script = self._scripts.get(path)
        if not script:
            return None
        reply = script.pop(0)
        waited = 0.0
        while waited < reply.delay and not self._stopping.is_set():
            await asyncio.sleep(0.02)
            waited += 0.02
        while reply.held is not None and not reply.held.is_set() and not self._stopping.is_set():
            await asyncio.sleep(0.02)
        if reply.body is not None:
            return Response(reply.body, reply.status, headers=reply.headers, media_type="text/html")
        if reply.json is None:
            return None  # only a delay: then the normal answer
        return JSONResponse(reply.json, reply.status, headers=reply.headers)

    def _unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.key}":
            return None
        return JSONResponse(
            {"error": "authentication-error", "info": "the API key is not valid"}, 401
        )

    async def _rooms_endpoint(self, request: Request) -> Response:
        body = await self._record(request)
        answer = await self._scripted("/rooms") or self._unauthorized(request)
        if answer is not None:
            return answer
        self._rooms += 1
        name = f"room-{self._rooms}"
        return JSONResponse(
            {
                "id": f"00000000-0000-4000-8000-{self._rooms:012d}",
                "name": name,
                "api_created": True,
                "privacy": body.get("privacy", "public"),
                "url": f"https://botdock-test.daily.co/{name}",
                "created_at": "2025-01-01T00:00:00.000Z",
                "config": body.get("properties", {}),
            }
        )

    async def _tokens_endpoint(self, request: Request) -> Response:
        body = await self._record(request)
        answer = await self._scripted("/meeting-tokens") or self._unauthorized(request)
        if answer is not None:
            return answer
        properties = body.get("properties", {})
        kind = "owner" if properties.get("is_owner") else "participant"
        token = f"eyJ.{kind}-token.{secrets.token_hex(12)}"
        self.tokens.append(Issued(properties, token))
        return JSONResponse({"token": token})


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1"
