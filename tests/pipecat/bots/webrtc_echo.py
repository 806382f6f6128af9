"""A WebRTC bot written as Pipecat's examples write one: `create_transport` on the
`SmallWebRTCSessionArguments` botdock built, then a pipeline that plays every audio frame the
client sent back to it, until the client hangs up. It logs what it got first, for the tests."""

from __future__ import annotations

import json

import pipecat
from loguru import logger
from pipecat.runner import types as runner_types
from pipecat.runner.utils import create_transport
from pipecat.transports.base_transport import TransportParams

from app.arguments import SessionArguments, SmallWebRTCSessionArguments
from tests.pipecat.bots.pipeline import run_pipeline

TRANSPORT_PARAMS = {
    "webrtc": lambda: TransportParams(audio_in_enabled=True, audio_out_enabled=True),
}


async def bot(args: SessionArguments) -> None:
    if not isinstance(args, SmallWebRTCSessionArguments):
        raise TypeError(f"this bot serves WebRTC sessions, not {type(args).__name__}")
    transport = await create_transport(args, TRANSPORT_PARAMS)
    got = {
        "body": args.body,
        "pipecat": pipecat.__version__,
        "is_runner_arguments": isinstance(args, runner_types.SmallWebRTCRunnerArguments),
        "transport": type(transport).__name__,
    }
    logger.info("webrtc bot got {}", json.dumps(got, sort_keys=True))
    await run_pipeline(args, transport)
    logger.info("webrtc bot: pipeline ended")
