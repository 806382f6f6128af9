"""A plain (sync) bot that blocks its thread on an event nobody sets, unless body says
otherwise: the thread outlives the session."""

import threading
import time

from app.arguments import SessionArguments

RELEASE = threading.Event()


def bot(args: SessionArguments) -> None:
    seconds = getattr(args, "body", {}).get("block", None)
    if seconds is None:
        RELEASE.wait()
    else:
        time.sleep(float(seconds))
