"""A phone bot as Pipecat's telephony examples write one: `create_transport(runner_args,
params)` builds the provider's serializer from what botdock read of the call's stream
(`call_data`), then a pipeline plays the caller's audio back until the caller presses `#`.

It first sends one JSON message telling what it got (`transport_type`, `call_data`, the
serializer's class) and the process it runs in. botdock hangs the call up through the
provider's REST API once the session ends; the serializer's own hang-up (which reaches only the
provider's public host from `create_transport`) is turned off, so the tests make no outbound
call.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pipecat.runner.utils import create_transport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

from app.arguments import SessionArguments, WebSocketSessionArguments
from tests.pipecat.bots.pipeline import run_pipeline

MADE: list[FastAPIWebsocketParams] = []


def _params() -> FastAPIWebsocketParams:
    params = FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True)
    MADE.append(params)
    return params


PARAMS = {name: _params for name in ("twilio", "telnyx", "plivo", "exotel")}


def _plain(call_data: Any) -> Any:
    dump = getattr(call_data, "model_dump", None)
    return dump(by_alias=True) if dump is not None else call_data


async def bot(args: SessionArguments) -> None:
    if not isinstance(args, WebSocketSessionArguments):
        raise TypeError("a phone bot serves WebSocket sessions")
    call_data = _plain(args.call_data)  # botdock's, before create_transport runs
    transport = await create_transport(args, PARAMS)
    serializer = MADE.pop().serializer
    serializer_params: Any = getattr(serializer, "_params", None)
    if hasattr(serializer_params, "auto_hang_up"):
        serializer_params.auto_hang_up = False
    report = {
        "session_id": args.session_id,
        "transport_type": args.transport_type,
        "call_data": call_data,
        "call_data_class": type(args.call_data).__name__,
        "serializer": type(serializer).__name__,
        "pid": os.getpid(),
    }
    await args.websocket.send_text(json.dumps({"event": "report", "report": report}))
    await run_pipeline(args, transport)
