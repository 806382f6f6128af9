"""A bot that does what `body["fault"]` says, for the containment tests: things a bot may do
that must end its own session only."""

import asyncio
import sys
import time
from typing import Any

from app.arguments import SessionArguments

STUBBORN: list[asyncio.Task[Any]] = []


class CustomStop(BaseException):
    """A BaseException that is not an Exception."""


async def _stubborn() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


async def _block(secs: float) -> None:
    time.sleep(secs)  # blocks the event loop: what an async bot must never do


async def bot(args: SessionArguments) -> None:
    body = getattr(args, "body", {})
    fault = body.get("fault", "")
    if fault == "block_loop":
        await _block(float(body.get("secs", 1)))
    if fault == "block_loop_in_task":  # in a task of its own, as a pipeline's processors run
        await asyncio.create_task(_block(float(body.get("secs", 1))))
    if fault == "sys_exit":
        sys.exit(3)
    if fault == "sys_exit_0":
        sys.exit(0)
    if fault == "keyboard_interrupt":
        raise KeyboardInterrupt
    if fault == "generator_exit":
        raise GeneratorExit
    if fault == "custom_base":
        raise CustomStop("a custom BaseException")
    if fault == "sleep":
        await asyncio.sleep(3600)
    if fault == "swallow_cancel_return":
        # What Pipecat's PipelineRunner does: catch the cancellation, tear down, return.
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return
    if fault == "swallow_cancel_forever":
        await _stubborn()
    if fault == "leak_stubborn_task":
        STUBBORN.append(asyncio.create_task(_stubborn(), name="stubborn-leak"))
