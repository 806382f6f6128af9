"""A bot module that imports in the server but raises when a worker process imports it (as a
module whose import needs something only the server's process has would)."""

import sys

from app.arguments import SessionArguments

_main = sys.modules["__main__"]
if getattr(getattr(_main, "__spec__", None), "name", None) == "app.workers.worker":
    raise RuntimeError("this module cannot be imported in a worker")


async def bot(args: SessionArguments) -> None:
    return None
