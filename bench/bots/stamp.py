"""Records when `bot()` is entered, for the start-latency scenario.

The first thing it does is read `CLOCK_MONOTONIC` (`time.monotonic_ns()`), which on Linux is
one system-wide clock, so the load generator's send time in another process compares with it
directly. It then appends `"<body.i> <ns>\\n"` to `STAMP_FILE` with one unbuffered write: the
work happens after the timestamp, so it does not count in the figure it records.
"""

import os
import time

from app.arguments import SessionArguments

_FD = os.open(os.environ["STAMP_FILE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


async def bot(args: SessionArguments) -> None:
    entered = time.monotonic_ns()
    body = getattr(args, "body", None) or {}
    os.write(_FD, f"{body.get('i', -1)} {entered}\n".encode())
