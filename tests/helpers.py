"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote


def b64(obj: Any) -> str:
    """A WebSocket `body` query value: base64 of the JSON."""
    return base64.b64encode(json.dumps(obj).encode()).decode()


def records(path: Path) -> list[dict[str, Any]]:
    """What the recorder bot wrote to RECORD_FILE, one JSON object a line."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def transport_ws_url(answer: dict[str, Any]) -> str:
    """Where Pipecat's WebSocket transport connects for a `POST /start` answer: it accepts
    only `wsUrl` and `token`, and appends `token` to `wsUrl` as a query parameter
    (`encodeURIComponent`), as @pipecat-ai/websocket-transport 1.7 does."""
    assert set(answer) == {"wsUrl", "token"}, answer
    url = answer["wsUrl"]
    separator = "&" if "?" in url else "?"
    token = quote(answer["token"], safe="-_.!~*'()")
    return f"{url}{separator}token={token}"
