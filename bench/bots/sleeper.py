"""Sleeps for `body["sleep"]` seconds (default 1): a short session for the drain scenario."""

import asyncio

from app.arguments import SessionArguments


async def bot(args: SessionArguments) -> None:
    body = getattr(args, "body", None) or {}
    await asyncio.sleep(float(body.get("sleep", 1.0)))
