"""RTVI echo bot: a Pipecat bot that needs no API key, no network and no model.

It speaks RTVI, the protocol of Pipecat's client SDKs (JavaScript, React, iOS, Android):
the client sends `client-ready` and gets `bot-ready`; every client request
(`client-message` with `{t, d}`) is answered with a `server-response` carrying the same
`t` and `d` back; and everything the user says is played back to them. Use it to check
a client, a network path or a deployment before spending on speech and LLM services.

The pipeline is `transport.input() -> EchoAudio -> transport.output()`. The
`PipelineWorker` adds RTVI itself (an `RTVIProcessor` in front of the pipeline and its
`RTVIObserver`) and answers `client-ready` with `bot-ready`; the bot adds the
`on_client_message` handler.

One file serves every transport `create_transport` knows, with the params of each:

- "websocket": a browser or app on botdock's `WS /ws` (Pipecat's
  `WebSocketTransport` client, protobuf frames);
- "daily": a Daily room (`POST /start` with `createDailyRoom`; needs `pipecat-ai[daily]`);
- "webrtc": SmallWebRTC, a browser's peer connection (botdock's `/api/offer`, or Pipecat's
  development runner).

Run it under botdock (from the project's root, with `uv sync --group pipecat` done):

    BOT_MODULE=examples.rtvi_echo_bot uv run python -m app

or copy this file over `bot.py`. Under Pipecat's own runner (`pipecat-ai[runner,webrtc]`),
`python examples/rtvi_echo_bot.py` serves it over SmallWebRTC on http://localhost:7860.

Written for Pipecat 1.3 and later (`PipelineWorker`, `WorkerRunner`).
"""

from typing import Any

from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.processors.frameworks.rtvi.models import ClientMessage
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pipecat.workers.runner import WorkerRunner


class EchoAudio(FrameProcessor):
    """Plays the user's audio back: each `InputAudioRawFrame` becomes an
    `OutputAudioRawFrame` with the same samples."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            frame = OutputAudioRawFrame(
                audio=frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels
            )
        await self.push_frame(frame, direction)


async def run_bot(transport: BaseTransport, runner_args: RunnerArguments) -> None:
    """Run the echo pipeline on `transport` until the client leaves."""
    pipeline = Pipeline([transport.input(), EchoAudio(), transport.output()])

    worker = PipelineWorker(pipeline, idle_timeout_secs=runner_args.pipeline_idle_timeout_secs)
    runner = WorkerRunner(
        handle_sigint=runner_args.handle_sigint, handle_sigterm=runner_args.handle_sigterm
    )
    await runner.add_workers(worker)

    @worker.rtvi.event_handler("on_client_message")
    async def on_client_message(rtvi: RTVIProcessor, message: ClientMessage) -> None:
        # Answer every request with its own data: the client's `sendClientRequest(t, d)`
        # resolves with `d`.
        logger.info(f"client message {message.type!r}")
        await rtvi.send_server_response(message, message.data)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: BaseTransport, client: Any) -> None:
        logger.info("Client connected")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: BaseTransport, client: Any) -> None:
        logger.info("Client disconnected")
        await runner.cancel()

    await runner.run()


def daily_params() -> Any:
    # Imported only for a Daily session: the other transports need no `pipecat-ai[daily]`.
    from pipecat.transports.daily.transport import DailyParams

    return DailyParams(audio_in_enabled=True, audio_out_enabled=True)


TRANSPORT_PARAMS = {
    "daily": daily_params,
    "webrtc": lambda: TransportParams(audio_in_enabled=True, audio_out_enabled=True),
    "websocket": lambda: FastAPIWebsocketParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        add_wav_header=False,
        serializer=ProtobufFrameSerializer(),
    ),
}


async def bot(runner_args: RunnerArguments) -> None:
    """Main bot entry point: botdock (and Pipecat's runner) call it once per session."""
    transport = await create_transport(runner_args, TRANSPORT_PARAMS)
    await run_bot(transport, runner_args)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
