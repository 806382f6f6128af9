"""A test bot driven by its body: records what it received, then sleeps, raises or echoes.

Body keys: "sleep" (seconds), "raise" (message), "close" (close the WebSocket itself).
Records go to RECORDS in process and, when RECORD_FILE is set, one JSON line each to it.
"""

import asyncio
import json
import os
from typing import Any

from loguru import logger

from app.arguments import DailySessionArguments, SessionArguments, WebSocketSessionArguments

RECORDS: list[dict[str, Any]] = []


def describe(args: SessionArguments) -> dict[str, Any]:
    record: dict[str, Any] = {
        "class": type(args).__name__,
        "session_id": args.session_id,
        "body": getattr(args, "body", None),
    }
    if isinstance(args, DailySessionArguments):
        record["room_url"] = args.room_url
        record["token"] = args.token
    if isinstance(args, WebSocketSessionArguments):
        record["transport_type"] = args.transport_type
    return record


def _record(record: dict[str, Any]) -> None:
    RECORDS.append(record)
    path = os.environ.get("RECORD_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(record) + "\n")


async def bot(args: SessionArguments) -> None:
    record = describe(args)
    _record(record)
    logger.info("recorder bot entered")
    given = getattr(args, "body", None)
    body = given if isinstance(given, dict) else {}
    if isinstance(args, WebSocketSessionArguments):
        await args.websocket.send_json(record)
        if body.get("close"):
            await args.websocket.close(1000, "bot closed")
            return
        if "raise" in body:
            raise RuntimeError(body["raise"])
        async for message in args.websocket.iter_text():
            await args.websocket.send_text(message)
        return
    if "sleep" in body:
        await asyncio.sleep(float(body["sleep"]))
    if "raise" in body:
        raise RuntimeError(body["raise"])
