"""A bot that misbehaves as body["fault"] says, for the fault-injection tests.

raise_now, raise_after_close, never_return, close_socket, spawn_tasks, echo (the default).
"""

import asyncio
from typing import Any

from app.arguments import SessionArguments, WebSocketSessionArguments

ORPHANS: list[asyncio.Task[Any]] = []


async def _outlive(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def bot(args: SessionArguments) -> None:
    body = getattr(args, "body", {})
    fault = body.get("fault", "echo")
    ws = args.websocket if isinstance(args, WebSocketSessionArguments) else None
    if fault == "raise_now":
        raise ValueError("bot failed at once")
    if fault == "never_return":
        await asyncio.Event().wait()
    if fault == "spawn_tasks":
        for _ in range(3):
            ORPHANS.append(asyncio.create_task(_outlive(float(body.get("outlive", 1)))))
        return
    if ws is None:
        return
    if fault == "close_socket":
        await ws.close(4000, "bot closed the socket itself")
        return
    if fault == "raise_after_close":
        await ws.close(1000)
        raise RuntimeError("bot failed after closing its socket")
    async for message in ws.iter_text():
        await ws.send_text(message)
