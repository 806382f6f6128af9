"""A phone bot without Pipecat: it reports what it got (session id, transport type, call data,
the handshake messages it was replayed) and the process it runs in, then plays each `media`
message's audio back in the provider's own shape until the caller presses `#` (the bot ends the
call) or the stream ends."""

from __future__ import annotations

import json
import os
from typing import Any

from app.arguments import SessionArguments, WebSocketSessionArguments

# The message that plays audio to the caller, per provider, and the key of its stream id.
PLAY = {"twilio": "media", "telnyx": "media", "plivo": "playAudio", "exotel": "media"}


def _plain(call_data: Any) -> Any:
    dump = getattr(call_data, "model_dump", None)
    return dump(by_alias=True) if dump is not None else call_data


async def bot(args: SessionArguments) -> None:
    if not isinstance(args, WebSocketSessionArguments):
        raise TypeError("a phone bot serves WebSocket sessions")
    websocket = args.websocket
    call = _plain(args.call_data) or {}
    handshake: list[str] = []
    reported = False
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        event = json.loads(message["text"])
        if not reported and event.get("event") in ("connected", "start"):
            handshake.append(event["event"])
            if event["event"] != "start":
                continue
            report = {
                "session_id": args.session_id,
                "transport_type": args.transport_type,
                "call_data": call,
                "handshake": handshake,
                "pid": os.getpid(),
            }
            await websocket.send_text(json.dumps({"event": "report", "report": report}))
            reported = True
        elif event.get("event") == "media":
            payload = event["media"]["payload"]
            provider = call["provider"]
            if provider == "plivo":
                answer = {
                    "event": "playAudio",
                    "media": {
                        "contentType": "audio/x-mulaw",
                        "sampleRate": 8000,
                        "payload": payload,
                    },
                }
            elif provider == "telnyx":
                answer = {"event": "media", "media": {"payload": payload}}
            elif provider == "twilio":
                answer = {
                    "event": "media",
                    "streamSid": call["stream_id"],
                    "media": {"payload": payload},
                }
            else:
                answer = {
                    "event": "media",
                    "stream_sid": call["stream_id"],
                    "media": {"payload": payload},
                }
            await websocket.send_text(json.dumps(answer))
        elif event.get("event") == "dtmf" and event["dtmf"]["digit"] == "#":
            return  # the bot ends the call
        elif event.get("event") == "stop":
            return
