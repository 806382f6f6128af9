"""The template's own echo bot, behaving like the `bot.py` botdock ships: it echoes WebSocket
text and binary frames, and logs the other session kinds.

The tests load this one wherever they need "a bot that just works": `bot.py` is the user's,
and the template's suite never imports or runs it.
"""

from loguru import logger

from app.arguments import (
    DailySessionArguments,
    PipecatSessionArguments,
    SessionArguments,
    WebSocketSessionArguments,
)


async def bot(args: SessionArguments) -> None:
    if isinstance(args, WebSocketSessionArguments):
        websocket = args.websocket
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            elif message.get("bytes") is not None:  # a binary frame (audio, protobuf)
                await websocket.send_bytes(message["bytes"])
    elif isinstance(args, DailySessionArguments):
        logger.info("Daily session for room {} with body {}", args.room_url, args.body)
    elif isinstance(args, PipecatSessionArguments):
        logger.info("plain session with body {}", args.body)
