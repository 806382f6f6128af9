"""A bot whose `readyz()` misbehaves as the READYZ_FAULT environment variable says:
`block` (a sync call that blocks), `hang` (an async call that never returns), `exit`."""

import asyncio
import os
import sys
import time

from app.arguments import SessionArguments

FAULT = os.environ.get("READYZ_FAULT", "")

if FAULT == "hang":

    async def readyz() -> bool:
        await asyncio.Event().wait()
        return True

else:

    def readyz() -> bool:
        if FAULT == "block":
            time.sleep(30)
        if FAULT == "exit":
            sys.exit(4)
        return True


async def bot(args: SessionArguments) -> None:
    return None
