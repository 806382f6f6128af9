"""A plain (sync) bot that blocks its thread: until RELEASE is set (in process), until the file
body["until"] exists (across processes), or for body["block"] seconds. With none of them it
blocks on an event nobody sets: the thread outlives the session."""

import os
import threading
import time

from app.arguments import SessionArguments

RELEASE = threading.Event()


def bot(args: SessionArguments) -> None:
    body = getattr(args, "body", {})
    if "until" in body:
        while not os.path.exists(body["until"]):
            time.sleep(0.01)
    elif "block" in body:
        time.sleep(float(body["block"]))
    else:
        RELEASE.wait()
