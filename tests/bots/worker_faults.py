"""A bot for SESSION_ISOLATION=process: faults that only a process boundary contains, as
body["fault"] says. Without a fault it logs its process id and echoes WebSocket messages.

segfault (ctypes reads address 0), os_exit, sys_exit, allocate (body["mb"] MB, touched, then
held), block (time.sleep(body["secs"]) on the loop, then return), block_then_wait (the same,
then wait to be cancelled), thread (a non-daemon
thread that never ends, then return), never_return, ignore_cancel (swallows every
cancellation), no_read (never reads its WebSocket), leave_task
(returns, leaving a task running).
"""

import asyncio
import contextlib
import ctypes
import os
import sys
import threading
import time

from loguru import logger

from app.arguments import (
    DailySessionArguments,
    SessionArguments,
    WebSocketSessionArguments,
)

HELD: list[bytearray] = []
LEFT: list[asyncio.Task[None]] = []


async def bot(args: SessionArguments) -> None:
    body = args.body or {}
    fault = body.get("fault", "echo")
    logger.info("bot in process {} fault={}", os.getpid(), fault)
    if fault == "segfault":
        ctypes.string_at(0)
    elif fault == "os_exit":
        os._exit(7)
    elif fault == "sys_exit":
        sys.exit(3)
    elif fault == "allocate":
        HELD.append(bytearray(b"\x01") * (int(body["mb"]) * 1024 * 1024))
        await asyncio.sleep(30)
    elif fault == "block":
        time.sleep(float(body.get("secs", 10)))  # the fault under test: blocks the loop
    elif fault == "block_then_wait":
        time.sleep(float(body.get("secs", 10)))  # blocks the worker's loop, then lives on
        await asyncio.Event().wait()
    elif fault == "leave_task":
        LEFT.append(asyncio.create_task(asyncio.sleep(30)))
    elif fault == "thread":
        threading.Thread(target=threading.Event().wait, name="forever").start()
    elif fault in ("never_return", "no_read"):  # no_read: holds its WebSocket, unread
        await asyncio.Event().wait()
    elif fault == "ignore_cancel":
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
    if isinstance(args, DailySessionArguments):
        logger.info("daily room {} token length {}", args.room_url, len(args.token or ""))
    if isinstance(args, WebSocketSessionArguments):
        ws = args.websocket
        logger.info("transport_type={} path={}", args.transport_type, ws.url.path)
        async for message in ws.iter_text():
            if message == "bytes":
                await ws.send_bytes(b"\x00\x01\x02")
            elif message == "close":
                await ws.close(4001, "bot closed it")
                return
            else:
                await ws.send_text(message)
