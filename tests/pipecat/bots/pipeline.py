"""A bot written as Pipecat's examples write one: `create_transport(runner_args, params)`,
then a pipeline whose runner leaves the signals to botdock (`handle_sigint` and
`handle_sigterm` from the arguments).

On a WebSocket session it first sends one JSON message telling what it got (the classes
the arguments match, their runner fields, the transport `create_transport` built), then
runs a pipeline of the transport's input and output until the client hangs up, with one
processor between them that sends every client message (Pipecat's RTVI messages, in
protobuf frames on a plain WebSocket) back. The bot leaves `transport_type` as botdock set
it (from the client's first message) unless the body's `transport_type` says otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import pipecatcloud.agent  # imported after botdock configured logging: its sinks must stay
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner import types as runner_types
from pipecat.runner.utils import create_transport
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

from app.arguments import SessionArguments, WebSocketSessionArguments

try:  # Pipecat 1.3 and later
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.workers.runner import WorkerRunner
except ImportError:  # Pipecat 1.0 to 1.2
    PipelineWorker = None
    WorkerRunner = None


TRANSPORT_PARAMS = {
    "websocket": lambda: FastAPIWebsocketParams(serializer=ProtobufFrameSerializer()),
    "exotel": lambda: FastAPIWebsocketParams(),
}


class EchoMessages(FrameProcessor):  # type: ignore[misc]
    """Sends each client message back to the client."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputTransportMessageFrame):
            frame = OutputTransportMessageUrgentFrame(message={"echo": frame.message})
        await self.push_frame(frame, direction)


def report(args: SessionArguments, transport: Any) -> dict[str, Any]:
    call_data = args.call_data
    return {
        "session_id": args.session_id,
        "body": args.body,
        "is_runner_arguments": isinstance(args, runner_types.WebSocketRunnerArguments),
        "is_cloud_arguments": isinstance(args, pipecatcloud.agent.WebSocketSessionArguments),
        "handle_sigint": args.handle_sigint,
        "handle_sigterm": args.handle_sigterm,
        "pipeline_idle_timeout_secs": args.pipeline_idle_timeout_secs,
        "transport_type": getattr(args, "transport_type", "missing"),
        "call_id": None if call_data is None else call_data.get("call_id"),
        "transport": f"{type(transport).__module__}.{type(transport).__name__}",
    }


async def bot(args: SessionArguments) -> None:
    if not isinstance(args, WebSocketSessionArguments):
        raise TypeError(f"this bot serves WebSocket sessions, not {type(args).__name__}")
    if "transport_type" in args.body:
        args.transport_type = args.body["transport_type"]
    transport = await create_transport(args, TRANSPORT_PARAMS)
    await args.websocket.send_text(json.dumps(report(args, transport)))
    logger.info("bot: running the pipeline")
    await run_pipeline(args, transport)
    logger.info("bot: pipeline ended")


async def run_pipeline(args: SessionArguments, transport: Any) -> None:
    pipeline = Pipeline([transport.input(), EchoMessages(), transport.output()])
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
