"""The baseline: a bare FastAPI app with the service's routes doing the least possible work,
served by uvicorn the same way as the service.

`python -m bench.baseline_app` reads `HOST` and `PORT` and calls `uvicorn.run` with the
service's loop, HTTP and WebSocket choices (`loop="auto"`, so uvloop; `http="auto"`, so
httptools; `ws="auto"`, so websockets; `lifespan="on"`; no `server` header) and uvicorn's
default logging: its own `LOGGING_CONFIG` at INFO with the access log on.
"""

from __future__ import annotations

import asyncio
import os

import uvicorn
from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.post("/bot")
async def bot() -> dict[str, str]:
    return {}


@app.post("/start")
async def start() -> dict[str, str]:
    return {}


@app.post("/sleep")
async def sleep(secs: float = 1.0) -> dict[str, str]:
    """Holds the request for `secs`: the baseline's "session" in the drain scenario."""
    await asyncio.sleep(secs)
    return {}


@app.get("/livez")
async def livez() -> dict[str, str]:
    return {}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {}


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():  # ends quietly when the client disconnects
        await websocket.send_text(message)


if __name__ == "__main__":
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        loop="auto",
        http="auto",
        ws="auto",
        lifespan="on",
        server_header=False,
    )
