"""A WebSocket bot that answers with the values of the environment variables named in its
body's `names`: what a bot reading its keys with `os.getenv` sees."""

import json
import os

from app.arguments import SessionArguments, WebSocketSessionArguments


async def bot(args: SessionArguments) -> None:
    assert isinstance(args, WebSocketSessionArguments)
    names = args.body.get("names", [])
    await args.websocket.send_text(json.dumps({name: os.getenv(name) for name in names}))
