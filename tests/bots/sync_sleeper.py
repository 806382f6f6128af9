"""A plain (sync) bot that sleeps for body["sleep"] seconds in its worker thread."""

import time

from loguru import logger

from app.arguments import SessionArguments

ENTERED: list[str | None] = []


def bot(args: SessionArguments) -> None:
    ENTERED.append(args.session_id)
    logger.info("sync bot sleeping")
    time.sleep(float(getattr(args, "body", {}).get("sleep", 0)))
    logger.info("sync bot done")
