"""A bot written as Pipecat's examples write one: `create_transport(runner_args, params)`,
then a pipeline whose runner leaves the signals to botdock (`handle_sigint` and
`handle_sigterm` from the arguments).

On a WebSocket session it first sends one JSON message telling what it got (the classes
the arguments match, their runner fields, the transport `create_transport` built), then
runs a pipeline of the transport's input and output until the client hangs up, with
processors between them that send every client message (Pipecat's RTVI messages, in
protobuf frames on a plain WebSocket) and every audio frame back. The bot leaves
`transport_type` as botdock set it (from the client's first message) unless the body's
`transport_type` says otherwise.

A plain WebSocket gets `create_transport`'s transport. A phone provider's media stream
(`transport_type` left `None`) is read as Pipecat's telephony examples read one:
`parse_telephony_websocket`, then the provider's serializer built by the bot. The caller
pressing `#` ends the pipeline (the bot ends the call). Hang-up through the provider's API is
on only for Twilio when the test names a Twilio API on loopback (`TEST_TWILIO_API`, with
`TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`): Pipecat's Twilio serializer takes a base URL,
the others call their provider's public host, and tests make no outbound calls.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

import pipecatcloud.agent  # imported after botdock configured logging: its sinks must stay
from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner import types as runner_types
from pipecat.runner.utils import create_transport, parse_telephony_websocket
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from app.arguments import SessionArguments, WebSocketSessionArguments

try:  # Pipecat 1.4 and later
    from pipecat.frames.frames import EndWorkerFrame as EndPipelineFrame
except ImportError:
    from pipecat.frames.frames import EndTaskFrame as EndPipelineFrame

try:  # Pipecat 1.3 and later
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.workers.runner import WorkerRunner
except ImportError:  # Pipecat 1.0 to 1.2
    PipelineWorker = None
    WorkerRunner = None


TRANSPORT_PARAMS = {
    "websocket": lambda: FastAPIWebsocketParams(serializer=ProtobufFrameSerializer()),
}


def telephony_serializer(provider: str, call_data: Any) -> Any:
    """The provider's serializer, never hanging up through the provider's API."""
    stream_id = call_data["stream_id"]
    call_id = call_id_of(call_data)
    if provider == "twilio":
        api = os.environ.get("TEST_TWILIO_API")
        if api and "base_url" in inspect.signature(TwilioFrameSerializer).parameters:
            return TwilioFrameSerializer(
                stream_sid=stream_id,
                call_sid=call_id,
                account_sid=os.environ["TWILIO_ACCOUNT_SID"],
                auth_token=os.environ["TWILIO_AUTH_TOKEN"],
                base_url=api,
            )
        return TwilioFrameSerializer(
            stream_sid=stream_id,
            call_sid=call_id,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "telnyx":
        return TelnyxFrameSerializer(
            stream_id=stream_id,
            call_control_id=call_id,
            outbound_encoding=call_data["outbound_encoding"],
            inbound_encoding="PCMU",
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "plivo":
        return PlivoFrameSerializer(
            stream_id=stream_id,
            call_id=call_id,
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if provider == "exotel":
        return ExotelFrameSerializer(stream_sid=stream_id, call_sid=call_id)
    raise ValueError(f"not a phone provider's media stream: {provider}")


async def telephony_transport(args: WebSocketSessionArguments) -> tuple[Any, str, Any]:
    provider, call_data = await parse_telephony_websocket(args.websocket)
    params = FastAPIWebsocketParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        add_wav_header=False,
        serializer=telephony_serializer(provider, call_data),
    )
    return FastAPIWebsocketTransport(websocket=args.websocket, params=params), provider, call_data


class EchoMessages(FrameProcessor):  # type: ignore[misc]
    """Sends each client message back to the client."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputTransportMessageFrame):
            frame = OutputTransportMessageUrgentFrame(message={"echo": frame.message})
        await self.push_frame(frame, direction)


class EchoAudio(FrameProcessor):  # type: ignore[misc]
    """Plays each audio frame the client sent back to it."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            frame = OutputAudioRawFrame(
                audio=frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels
            )
        await self.push_frame(frame, direction)


class EndOnPound(FrameProcessor):  # type: ignore[misc]
    """The caller pressing `#` ends the pipeline, as a bot ends a call."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame) and frame.button == KeypadEntry.POUND:
            await self.push_frame(EndPipelineFrame(), FrameDirection.UPSTREAM)
            return
        await self.push_frame(frame, direction)


def call_id_of(call_data: Any) -> Any:
    """The call's id: Pipecat 1.0 kept Telnyx's under `call_control_id`."""
    return call_data.get("call_id") or call_data.get("call_control_id")


def report(
    args: SessionArguments, transport: Any, provider: str | None = None, call_data: Any = None
) -> dict[str, Any]:
    if call_data is None:
        call_data = args.call_data
    return {
        "session_id": args.session_id,
        "body": args.body,
        "is_runner_arguments": isinstance(args, runner_types.WebSocketRunnerArguments),
        "is_cloud_arguments": isinstance(args, pipecatcloud.agent.WebSocketSessionArguments),
        "handle_sigint": args.handle_sigint,
        "handle_sigterm": args.handle_sigterm,
        "pipeline_idle_timeout_secs": args.pipeline_idle_timeout_secs,
        "transport_type": provider or getattr(args, "transport_type", "missing"),
        "call_id": None if call_data is None else call_id_of(call_data),
        "stream_id": None if call_data is None else call_data.get("stream_id"),
        "transport": f"{type(transport).__module__}.{type(transport).__name__}",
    }


async def bot(args: SessionArguments) -> None:
    if not isinstance(args, WebSocketSessionArguments):
        raise TypeError(f"this bot serves WebSocket sessions, not {type(args).__name__}")
    if "transport_type" in args.body:
        args.transport_type = args.body["transport_type"]
    provider, call_data = None, None
    if getattr(args, "transport_type", None) is None:  # a phone provider's media stream
        transport, provider, call_data = await telephony_transport(args)
    else:
        transport = await create_transport(args, TRANSPORT_PARAMS)
    await args.websocket.send_text(json.dumps(report(args, transport, provider, call_data)))
    logger.info("bot: running the pipeline")
    await run_pipeline(args, transport)
    logger.info("bot: pipeline ended")


async def run_pipeline(args: SessionArguments, transport: Any) -> None:
    pipeline = Pipeline(
        [transport.input(), EchoMessages(), EchoAudio(), EndOnPound(), transport.output()]
    )
    idle = args.pipeline_idle_timeout_secs
    if PipelineWorker is not None and WorkerRunner is not None:
        worker = PipelineWorker(pipeline, idle_timeout_secs=idle)
        runner = WorkerRunner(handle_sigint=args.handle_sigint, handle_sigterm=args.handle_sigterm)

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await worker.cancel()

        await runner.add_workers(worker)
        await runner.run()
    else:
        from pipecat.pipeline.runner import PipelineRunner
        from pipecat.pipeline.task import PipelineTask

        task = PipelineTask(pipeline, idle_timeout_secs=idle)
        old_runner = PipelineRunner(
            handle_sigint=args.handle_sigint, handle_sigterm=args.handle_sigterm
        )

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(transport: Any, client: Any) -> None:
            await task.cancel()

        await old_runner.run(task)
