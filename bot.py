"""Your bot: the one file you edit.

botdock calls `bot(args)` once per session, with the session's arguments:

- `WebSocketSessionArguments` for a WebSocket on `/ws`: `args.websocket` is the accepted
  FastAPI WebSocket; return (or let the client hang up) to end the session.
- `DailySessionArguments` for a Daily room: `args.room_url` and `args.token` (the bot's own
  meeting token) are what a Pipecat `DailyTransport` needs.
- `PipecatSessionArguments` for a plain HTTP session.

Every kind has `args.session_id` and `args.body`, the caller's custom JSON object (`{}` when
none was sent). `bot` may be `async def` (preferred) or a plain `def`, which runs in a worker
thread. Log with loguru's `logger`: each line carries the session id.

With Pipecat installed (`uv sync --group pipecat`), these classes are Pipecat's own runner
arguments (and Pipecat Cloud's), so a bot written as Pipecat's examples show works as is:
`transport = await create_transport(args, transport_params)`, then
`PipelineRunner(handle_sigint=args.handle_sigint)` (always False: botdock owns the signals).

Optionally define `readyz()` returning `True`/`False` (or `{"ready": bool}`) to hold the
service out of a load balancer while a dependency of yours is down.

This default needs no API keys: it echoes WebSocket text and binary messages and logs the
other kinds.
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
        # Echo every message (text or binary) back until the client disconnects.
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
        # A real voice bot would start a Pipecat pipeline with a DailyTransport here.
        logger.info("Daily session for room {} with body {}", args.room_url, args.body)
    elif isinstance(args, PipecatSessionArguments):
        logger.info("plain session with body {}", args.body)
