"""A signed call of each phone provider into the real service, answered by a Pipecat bot built
by `create_transport`: botdock reads the stream's handshake and hands the bot `call_data`
(Pipecat's `CallData`), Pipecat builds that provider's serializer from it, the pipeline plays
the caller's audio back in the provider's format, the caller's `#` ends the bot, the service
closes the stream and hangs the call up through the provider's REST API (a fake on loopback)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from pipecat.runner import types as runner_types
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fake_phone_apis import FakePhoneApis
from tests.helpers import wait_for
from tests.phone import Call, Credentials, stream_url
from tests.pipecat.test_sessions import finished, start_pipecat_server, stop_and_check_drain
from tests.server import ServerFactory, ServerProcess

CALL_DATA = hasattr(runner_types, "CallData")  # Pipecat releases with a typed CallData
SERIALIZERS = {
    "twilio": "TwilioFrameSerializer",
    "telnyx": "TelnyxFrameSerializer",
    "plivo": "PlivoFrameSerializer",
    "exotel": "ExotelFrameSerializer",
}


async def phone_call(url: str, call: Call) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The provider's side: handshake, then a media message every 20 ms until the bot has
    reported and played audio back; then `#`. The report, the played message, the close code."""
    async with connect(url) as ws:
        for message in call.handshake():
            await ws.send(json.dumps(message))

        async def report_and_audio() -> tuple[Any, Any]:
            report = json.loads(await ws.recv())["report"]
            while True:
                message = json.loads(await ws.recv())
                if call.played(message) is not None:
                    return report, message

        answer = asyncio.ensure_future(report_and_audio())
        try:
            async with asyncio.timeout(20):
                while not answer.done():
                    await ws.send(json.dumps(call.media()))
                    await asyncio.wait({answer}, timeout=0.02)
            report, played = answer.result()
        finally:
            answer.cancel()
        await ws.send(json.dumps(call.dtmf("#")))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(20):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    return report, played, closed.value.rcvd.code


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_each_providers_signed_call_reaches_a_create_transport_bot(
    server_for: ServerFactory, isolation: str
) -> None:
    """In `process` mode each call runs in a worker process: Pipecat's `CallData` is typed
    again there, and `create_transport` builds the serializer from it as it does inline."""
    with FakePhoneApis() as apis:
        creds = Credentials(twilio_token=apis.twilio_token, plivo_token=apis.plivo_token)
        server: ServerProcess = start_pipecat_server(
            server_for,
            BOT_MODULE="tests.pipecat.bots.phone",
            TWILIO_ACCOUNT_SID=apis.twilio_sid,
            TWILIO_API_URL=apis.url,
            TELNYX_API_KEY=apis.telnyx_key,
            TELNYX_API_URL=apis.url,
            PLIVO_AUTH_ID=apis.plivo_id,
            PLIVO_API_URL=apis.url,
            SESSION_ISOLATION=isolation,
            **creds.settings(),
        )
        server.wait_answering("/readyz", timeout=90)  # process: a worker has imported the bot
        for provider in SERIALIZERS:
            call = Call.new(provider)
            apis.live_calls.add(call.call_id)
            with httpx.Client() as client:
                answer = client.send(call.webhook(server.url, creds))
            assert answer.status_code == 200, answer.text
            report, played, code = asyncio.run(phone_call(stream_url(provider, answer), call))
            assert report["session_id"] == call.call_id
            assert report["transport_type"] == provider
            assert report["serializer"] == SERIALIZERS[provider]
            data = report["call_data"]
            assert (data["call_id"], data["stream_id"], data["provider"]) == (
                call.call_id,
                call.stream_id,
                provider,
            )
            assert (data["from"], data["to"]) == (call.caller, call.callee)
            if CALL_DATA:
                expected = {"telnyx": "TelnyxCallData", "exotel": "ExotelCallData"}
                assert report["call_data_class"] == expected.get(provider, "CallData")
            assert (report["pid"] == server.pid) is (isolation == "inline")
            assert base64.b64decode(played["media"]["payload"])
            assert code == 1000
            wait_for(lambda: finished(server, call.call_id) is not None)  # noqa: B023
            assert finished(server, call.call_id) == "completed"
        wait_for(lambda: len(apis.hang_ups) == 3)
        assert sorted(p for p, _ in apis.hang_ups) == ["plivo", "telnyx", "twilio"]
        assert apis.refused == []
        stop_and_check_drain(server)
