"""A bot that starts a thread of its own which raises (the bot itself returns normally)."""

import threading

from app.arguments import SessionArguments


def _work() -> None:
    raise ValueError("the bot's own thread failed")


async def bot(args: SessionArguments) -> None:
    worker = threading.Thread(target=_work, name="bot-worker")
    worker.start()
    worker.join()
