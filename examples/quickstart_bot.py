"""Quickstart voice bot: Pipecat's quickstart (`pipecat init quickstart`), served by botdock.

A cascade pipeline: the user's speech goes to Deepgram (speech-to-text), the text to
OpenAI (the LLM, through its Responses API) and the answer to Cartesia (text-to-speech),
which the user hears. Silero's VAD (its model ships inside pipecat-ai, nothing is
downloaded) tells when the user has stopped speaking; the context aggregators keep the
conversation. RTVI comes with the `PipelineWorker`: a Pipecat client SDK gets `bot-ready`
after `client-ready`, then the bot introduces itself.

Keys come from the environment, as Pipecat Cloud's secrets do (botdock puts `.env` into the
environment at start-up; what the real environment sets wins):

- `DEEPGRAM_API_KEY`, `OPENAI_API_KEY`, `CARTESIA_API_KEY` (required);
- `OPENAI_MODEL` (default `gpt-4.1`) and `CARTESIA_VOICE_ID` (optional).

Transports, through `create_transport`: "websocket" (botdock's `WS /ws`, Pipecat's
`WebSocketTransport` client with protobuf frames), "daily" (a Daily room) and "webrtc"
(SmallWebRTC, under Pipecat's development runner).

Run it under botdock (from the project's root, after `uv sync --group pipecat`):

    BOT_MODULE=examples.quickstart_bot uv run --group pipecat python -m app

or copy this file over `bot.py`. Written for Pipecat 1.3 and later.
"""

import os
from typing import Any

from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.openai.responses.llm import OpenAIResponsesLLMService
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pipecat.workers.runner import WorkerRunner

SYSTEM_INSTRUCTION = (
    "You are a helpful assistant in a voice conversation. Your responses will be spoken "
    "aloud, so avoid emojis, bullet points, or other formatting that can't be spoken. "
    "Respond to what the user said in a creative, helpful, and brief way."
)


def build_pipeline(transport: BaseTransport) -> tuple[Pipeline, LLMContext]:
    """The bot's pipeline on `transport`, and the conversation's context. Builds the
    services from the environment's keys; connects to nothing (they connect when the
    pipeline starts)."""
    # Speech-to-Text service
    stt = DeepgramSTTService(api_key=os.getenv("DEEPGRAM_API_KEY"))

    # Text-to-Speech service
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY"),
        settings=CartesiaTTSService.Settings(
            voice=os.getenv("CARTESIA_VOICE_ID", "86e30c1d-714b-4074-a1f2-1cb6b552fb49"),
        ),
    )

    # LLM service
    llm = OpenAIResponsesLLMService(
        api_key=os.getenv("OPENAI_API_KEY"),
        settings=OpenAIResponsesLLMService.Settings(
            model=os.getenv("OPENAI_MODEL", "gpt-4.1"),
            system_instruction=SYSTEM_INSTRUCTION,
        ),
    )

    context = LLMContext()
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()),
    )

    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            user_aggregator,
            llm,
            tts,
            transport.output(),
            assistant_aggregator,
        ]
    )
    return pipeline, context


async def run_bot(transport: BaseTransport, runner_args: RunnerArguments) -> None:
    """Run the voice bot for this session, until the client leaves."""
    logger.info("Starting bot")
    pipeline, context = build_pipeline(transport)

    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        idle_timeout_secs=runner_args.pipeline_idle_timeout_secs,
    )
    runner = WorkerRunner(
        handle_sigint=runner_args.handle_sigint, handle_sigterm=runner_args.handle_sigterm
    )
    await runner.add_workers(worker)

    @worker.rtvi.event_handler("on_client_ready")
    async def on_client_ready(rtvi: RTVIProcessor) -> None:
        # Kick off the conversation
        context.add_message(
            {"role": "developer", "content": "Start by concisely introducing yourself."}
        )
        await worker.queue_frames([LLMRunFrame()])

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
