"""Resource figures of this process (RSS, open descriptors, threads, asyncio tasks), read from
/proc on Linux with portable fallbacks elsewhere."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
from pathlib import Path

_PROC = Path("/proc/self")


def process_figures() -> dict[str, int]:
    return {
        "rss_bytes": _rss_bytes(),
        "open_fds": _open_fds(),
        "threads": _threads(),
        "asyncio_tasks": len(asyncio.all_tasks()),
    }


def _status_field(name: str) -> int | None:
    try:
        for line in (_PROC / "status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_bytes() -> int:
    kib = _status_field("VmRSS")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak, not current
    return peak if sys.platform == "darwin" else peak * 1024


def _open_fds() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # minus the descriptor listdir itself opened
        except OSError:
            continue
    return -1


def _threads() -> int:
    count = _status_field("Threads")
    return count if count is not None else threading.active_count()
