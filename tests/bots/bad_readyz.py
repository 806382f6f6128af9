"""A bot whose `readyz()` misbehaves as the READYZ_FAULT environment variable says:
`block` (a sync call that blocks), `hang` (an async call that never returns), `exit`."""

import asyncio
import os
import sys
import time

from app.arguments import SessionArguments

FAULT = os.environ.get("READYZ_FAULT", "")


async def _hanging_readyz() -> bool:
    await asyncio.Event().wait()
    return True


def _readyz() -> bool:
    if FAULT == "block":
        time.sleep(30)
    if FAULT == "exit":
        sys.exit(4)
    return True


readyz = _hanging_readyz if FAULT == "hang" else _readyz


async def bot(args: SessionArguments) -> None:
    return None
