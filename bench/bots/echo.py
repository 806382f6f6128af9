"""Echoes WebSocket text, the same loop as the baseline's bare `/ws` (and `bot.py`'s)."""

from app.arguments import SessionArguments, WebSocketSessionArguments


async def bot(args: SessionArguments) -> None:
    if isinstance(args, WebSocketSessionArguments):
        websocket = args.websocket
        async for message in websocket.iter_text():
            await websocket.send_text(message)
