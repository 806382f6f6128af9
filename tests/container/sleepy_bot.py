"""A bot for the drain check, mounted into the container at run time (tests never go into
the image): it sleeps for body["sleep"] seconds, then logs that it finished."""

import asyncio
from typing import Any

from loguru import logger


async def bot(args: Any) -> None:
    body = args.body if isinstance(args.body, dict) else {}
    await asyncio.sleep(float(body.get("sleep", 0)))
    logger.info("sleepy bot finished its work")
