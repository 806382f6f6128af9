"""A plain (sync) bot that does what `body["fault"]` says, in its worker thread."""

import sys
import time

from app.arguments import SessionArguments


def bot(args: SessionArguments) -> None:
    fault = getattr(args, "body", {}).get("fault", "")
    if fault == "sys_exit":
        sys.exit(3)
    if fault == "keyboard_interrupt":
        raise KeyboardInterrupt
    if fault == "sleep":
        time.sleep(3600)
    if fault == "custom_base":
        raise BaseException("a bare BaseException")
