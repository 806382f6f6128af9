"""A bot module whose import takes 1.5 s in a worker process (as Pipecat's imports take
seconds), and none in the server."""

import sys
import time

from app.arguments import SessionArguments

_main = sys.modules["__main__"]
if getattr(getattr(_main, "__spec__", None), "name", None) == "app.workers.worker":
    time.sleep(1.5)


async def bot(args: SessionArguments) -> None:
    return None
