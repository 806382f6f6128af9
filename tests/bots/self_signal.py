"""A bot that sends SIGTERM to its own process from its session's code (body["signals"] times,
default once), so the service's signal handler runs while that session's log context is
current; then it waits to be ended."""

import asyncio
import os
import signal

from loguru import logger

from app.arguments import SessionArguments


async def bot(args: SessionArguments) -> None:
    count = int(getattr(args, "body", {}).get("signals", 1))
    logger.info("self-signal bot sending SIGTERM x{}", count)
    for _ in range(count):
        os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(3600)
