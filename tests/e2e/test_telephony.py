"""Phone calls against the real server: each provider's signed webhook, its markup, then its
media stream on the answered URL with a bot that echoes the caller's audio; forged webhooks,
bad stream tokens, malformed and silent streams, capacity and drain answers, and the hang-up
through each provider's REST API (fakes on loopback)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fake_phone_apis import FakePhoneApis
from tests.helpers import wait_for
from tests.phone import Call, Credentials, stream_url
from tests.server import ServerFactory, ServerProcess

PROVIDERS = ["twilio", "telnyx", "plivo", "exotel"]
PHONE_BOT = {"BOT_MODULE": "tests.bots.phone_echo", "SESSION_MODE": "websocket"}
# For a test that leaves an answered call without its stream: the drain when the test ends
# waits for that call's stream until it expires (30 s by default).
QUICK_EXPIRY = "3"


def send(server: ServerProcess, request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def sessions(server: ServerProcess) -> list[Any]:
    listed: list[Any] = httpx.get(f"{server.url}/sessions").json()["sessions"]
    return listed


def healthy(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/health")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def local(server: ServerProcess, url: str) -> str:
    """The answered stream URL, reached on this test's server (its path is what matters)."""
    path = url.split("/ws/phone/", 1)[1]
    return f"{server.ws_url}/ws/phone/{path}"


def answer_call(server: ServerProcess, call: Call, creds: Credentials | None) -> str:
    answer = send(server, call.webhook(server.url, creds))
    assert answer.status_code == 200, answer.text
    return stream_url(call.provider, answer)


async def refused(url: str, messages: list[Any] = ()) -> tuple[int, str]:  # type: ignore[assignment]
    """Connect, send `messages` (text, or bytes as a binary frame), and return how the
    service closed the stream."""
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                for message in messages:  # a stream refused at once may close before they go
                    await ws.send(
                        message if isinstance(message, bytes | str) else json.dumps(message)
                    )
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def converse(url: str, call: Call) -> tuple[dict[str, Any], list[str], tuple[int, str]]:
    """The provider's side of a call: handshake, two media messages, then `#`. Returns the
    bot's report, the audio it played back and how the stream was closed."""
    async with connect(url) as ws:
        for message in call.handshake():
            await ws.send(json.dumps(message))
        report = json.loads(await asyncio.wait_for(ws.recv(), 15))["report"]
        played = []
        for _ in range(2):
            await ws.send(json.dumps(call.media()))
            echoed = call.played(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            assert echoed is not None
            played.append(echoed)
        await ws.send(json.dumps(call.dtmf("#")))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    return report, played, (closed.value.rcvd.code, closed.value.rcvd.reason)


def phone_server(server_for: ServerFactory, apis: FakePhoneApis | None, **env: str) -> Any:
    creds = (
        Credentials(twilio_token=apis.twilio_token, plivo_token=apis.plivo_token)
        if apis is not None
        else Credentials()
    )
    settings = {**PHONE_BOT, **creds.settings(), **env}
    if apis is not None:
        settings.update(
            TWILIO_ACCOUNT_SID=apis.twilio_sid,
            TWILIO_API_URL=apis.url,
            TELNYX_API_KEY=apis.telnyx_key,
            TELNYX_API_URL=apis.url,
            PLIVO_AUTH_ID=apis.plivo_id,
            PLIVO_API_URL=apis.url,
        )
    return server_for(settings), creds


MARKUP = {
    "twilio": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Connect><Stream url="{url}">'
        '<Parameter name="from_number" value="+15550001111"/>'
        '<Parameter name="to_number" value="+15550002222"/></Stream></Connect></Response>'
    ),
    "telnyx": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Connect><Stream url="{url}" '
        'bidirectionalMode="rtp"></Stream></Connect></Response>'
    ),
    "plivo": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Stream bidirectional="true" '
        'keepCallAlive="true" contentType="audio/x-mulaw;rate=8000">{url}</Stream></Response>'
    ),
    "exotel": '{{"url": "{url}"}}',
}


@pytest.mark.parametrize("isolation", ["inline", "process"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_call_is_answered_streamed_echoed_and_hung_up(
    server_for: ServerFactory, provider: str, isolation: str
) -> None:
    """In `process` mode the call's session runs in a worker: its `call_data` and replayed
    handshake travel there, and the hang-up still follows the bot's end."""
    with FakePhoneApis() as apis:
        server, creds = phone_server(server_for, apis, SESSION_ISOLATION=isolation)
        server.wait_answering("/readyz")  # process: a worker has imported the bot
        call = Call.new(provider)
        apis.live_calls.add(call.call_id)
        answer = send(server, call.webhook(server.url, creds))
        assert answer.status_code == 200, answer.text
        url = stream_url(provider, answer)
        token = url.rsplit("/", 1)[1]
        assert url == f"{server.ws_url}/ws/phone/{call.call_id}/{token}"
        assert answer.text == MARKUP[provider].format(url=url)
        assert answer.headers["content-type"].startswith(
            "application/json" if provider == "exotel" else "application/xml"
        )
        assert [s["sessionId"] for s in sessions(server)] == [call.call_id]  # announced

        report, played, close = asyncio.run(converse(url, call))
        assert report["session_id"] == call.call_id
        assert report["transport_type"] == provider
        data = report["call_data"]
        assert (data["provider"], data["call_id"], data["stream_id"]) == (
            provider,
            call.call_id,
            call.stream_id,
        )
        assert (data["from"], data["to"]) == (call.caller, call.callee)
        # The bot was handed the handshake too, as the provider sent it.
        expected = ["start"] if provider == "plivo" else ["connected", "start"]
        assert report["handshake"] == expected
        assert played == [call.audio, call.audio]
        assert close == (1000, "completed")

        hung_up = [] if provider == "exotel" else [(provider, call.call_id)]
        wait_for(lambda: apis.hang_ups == hung_up)
        wait_for(lambda: sessions(server) == [])
        assert apis.refused == []
        health = healthy(server)
        assert health["telephony"] == dict.fromkeys(PROVIDERS, "authenticated")
        log = server.log()
        assert token not in log
        assert f"{provider} call answered (authenticated)" in log
        if provider != "exotel":
            assert f"{provider} call hung up through its REST API" in log
        # Where the bot ran: the server's own process, or a worker.
        assert (report["pid"] == server.pid) is (isolation == "inline")


def tamper(request: httpx.Request) -> httpx.Request:
    """The same signed request with the caller's number changed after signing."""
    if request.method == "GET":
        return httpx.Request(
            "GET",
            str(request.url).replace("%2B15550001111", "%2B15559999999"),
            headers=request.headers,
        )
    body = request.content.replace(b"%2B15550001111", b"%2B15559999999")
    return httpx.Request("POST", request.url, headers=request.headers, content=body)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_forged_webhooks_get_403_and_start_nothing(
    server_for: ServerFactory, provider: str
) -> None:
    # The genuine call at the end waits for a stream that never comes: not for 30 s (the
    # drain at the test's end waits for it).
    server, creds = phone_server(server_for, None, PENDING_SESSION_TIMEOUT_SECS=QUICK_EXPIRY)
    call = Call.new(provider)
    unsigned = send(server, call.webhook(server.url, None))
    assert unsigned.status_code == 403
    assert unsigned.json()["error"] == "forbidden"
    refusals = 2
    if provider != "exotel":  # Exotel signs nothing: its secret is all there is to check
        tampered = send(server, tamper(call.webhook(server.url, creds)))
        assert tampered.status_code == 403
        refusals += 1
    wrong = send(server, call.webhook(server.url, Credentials()))  # another account's keys
    assert wrong.status_code == 403
    assert sessions(server) == []
    assert healthy(server)["status"] == "ok"
    assert server.log().count(f"{provider} webhook refused (403)") == refusals
    # and the genuine one is still answered
    assert send(server, call.webhook(server.url, creds)).status_code == 200


def test_forged_webhook_messages_name_the_cause(server_for: ServerFactory) -> None:
    server, creds = phone_server(server_for, None)
    twilio = send(server, Call.new("twilio").webhook(server.url, None)).json()
    assert twilio == {
        "error": "forbidden",
        "detail": "not a signed twilio request: no X-Twilio-Signature header",
    }
    tampered = send(server, tamper(Call.new("twilio").webhook(server.url, creds))).json()
    assert tampered["detail"] == (
        "not a signed twilio request: X-Twilio-Signature does not match this request"
    )
    # Telnyx: a signature older than the tolerance window is a replay.
    call = Call.new("telnyx")
    request = call.webhook(server.url, creds)
    body = request.content.decode()
    stale = "1000000000"
    signature = base64.b64encode(creds.telnyx_key.sign(f"{stale}|{body}".encode()))
    headers = {
        **request.headers,
        "telnyx-timestamp": stale,
        "telnyx-signature-ed25519": signature.decode(),
    }
    replayed = send(server, httpx.Request("POST", request.url, headers=headers, content=body))
    assert replayed.status_code == 403
    assert "away from this server's clock" in replayed.json()["detail"]
    assert sessions(server) == []


def test_without_credentials_webhooks_are_served_and_say_unauthenticated(
    server_for: ServerFactory,
) -> None:
    server = server_for(PHONE_BOT)
    assert healthy(server)["telephony"] == dict.fromkeys(PROVIDERS, "unauthenticated")
    call = Call.new("twilio")
    url = answer_call(server, call, None)
    assert "twilio call answered (unauthenticated)" in server.log()
    report, _, close = asyncio.run(converse(url, call))
    assert report["session_id"] == call.call_id
    assert close == (1000, "completed")


def test_stream_tokens_missing_foreign_or_spent_are_refused(server_for: ServerFactory) -> None:
    server, creds = phone_server(server_for, None)
    first, second = Call.new("twilio"), Call.new("twilio")
    first_url = answer_call(server, first, creds)
    second_url = answer_call(server, second, creds)
    first_token = first_url.rsplit("/", 1)[1]

    # missing
    code = asyncio.run(refused(f"{server.ws_url}/ws/phone/{first.call_id}"))
    assert code == (4401, "the stream URL holds no token")
    # foreign: the second call's URL with the first call's token
    foreign = second_url.rsplit("/", 1)[0] + "/" + first_token
    code = asyncio.run(refused(foreign))
    assert code == (4401, f"the session token belongs to another session, not {second.call_id}")
    # a stream whose start event names another call than the URL's
    code = asyncio.run(refused(second_url, first.handshake()))
    assert code == (
        4403,
        "the stream's start event names another call than the one this URL was answered for",
    )
    # spent: the first call's URL once to run the call, then again
    _, _, close = asyncio.run(converse(first_url, first))
    assert close == (1000, "completed")
    wait_for(lambda: sessions(server) == [])
    code = asyncio.run(refused(first_url))
    assert code == (
        4404,
        f"no announced session {first.call_id} is waiting: it ended, was cancelled, or its "
        "token was used",
    )
    log = server.log()
    assert log.count("phone stream for call") == 4
    assert first_token not in log
    assert healthy(server)["status"] == "ok"


def test_expired_stream_token_is_refused(server_for: ServerFactory) -> None:
    server, creds = phone_server(server_for, None, SESSION_TOKEN_TTL_SECS="1")
    call = Call.new("plivo")
    url = answer_call(server, call, creds)
    wait_for(lambda: sessions(server) == [])  # the announced call waits as long as its token
    code = asyncio.run(refused(url, call.handshake()))
    assert code == (
        4401,
        "the stream token expired: the stream came more than SESSION_TOKEN_TTL_SECS (1s) after "
        "the webhook",
    )
    assert "session timed_out kind=websocket" in server.log()
    assert healthy(server)["status"] == "ok"


def test_a_claimed_call_cannot_be_claimed_twice(server_for: ServerFactory) -> None:
    server, creds = phone_server(server_for, None)
    call = Call.new("telnyx")
    url = answer_call(server, call, creds)

    async def twice() -> tuple[int, str]:
        async with connect(url) as ws:
            for message in call.handshake():
                await ws.send(json.dumps(message))
            await asyncio.wait_for(ws.recv(), 15)  # the bot's report: the session runs
            return await refused(url)

    assert asyncio.run(twice()) == (
        4401,
        f"the session token was already used: session {call.call_id} is connected",
    )


@pytest.mark.parametrize(
    ("messages", "close"),
    [
        ([b"\x00\x01"], (4400, "a twilio stream opens with JSON text messages")),
        (["not json"], (4400, "not a twilio media-stream message (a JSON object with an event)")),
        (
            [{"streamSid": "x"}],
            (4400, "not a twilio media-stream message (a JSON object with an event)"),
        ),
        (
            [{"event": "start", "start": {"callSid": 42}}],
            (4400, "the twilio start event lacks start.callSid or start.streamSid"),
        ),
        (
            [{"event": "connected"}, {"event": "media"}, {"event": "media"}],
            (4400, "no start event in the first 3 twilio messages"),
        ),
        ([{"event": "connected"}], (4408, "no twilio start event within 1s")),
    ],
    ids=["binary", "not-json", "no-event", "bad-start", "no-start", "silent"],
)
def test_malformed_or_silent_streams_are_closed_and_start_nothing(
    server_for: ServerFactory, messages: list[Any], close: tuple[int, str]
) -> None:
    server, creds = phone_server(server_for, None, PHONE_START_TIMEOUT_SECS="1")
    call = Call.new("twilio")
    url = answer_call(server, call, creds)
    assert asyncio.run(refused(url, messages)) == close
    assert sessions(server) == []
    assert f"refused ({close[0]}): {close[1]}" in server.log()
    assert healthy(server)["status"] == "ok"
    assert "session started kind" not in server.log()


XML = '<?xml version="1.0" encoding="UTF-8"?>\n'
BUSY = {
    "twilio": XML + '<Response><Reject reason="busy"/></Response>',
    "telnyx": XML + '<Response><Reject reason="busy"/></Response>',
    "plivo": XML + '<Response><Hangup reason="busy"/></Response>',
}


def test_full_instance_answers_each_provider_busy_or_503(server_for: ServerFactory) -> None:
    server, creds = phone_server(
        server_for, None, MAX_SESSIONS="1", PENDING_SESSION_TIMEOUT_SECS=QUICK_EXPIRY
    )
    answer_call(server, Call.new("twilio"), creds)  # holds the one slot
    for provider in PROVIDERS:
        answer = send(server, Call.new(provider).webhook(server.url, creds))
        if provider == "exotel":
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["error"] == "at_capacity"
        else:
            assert answer.status_code == 200
            assert answer.text == BUSY[provider]
        assert f"{provider} call refused: at capacity" in server.log()
    assert len(sessions(server)) == 1


def test_draining_instance_answers_503_and_its_running_call_ends(
    server_for: ServerFactory,
) -> None:
    server, creds = phone_server(server_for, None, DRAIN_TIMEOUT_SECS="30")
    call = Call.new("plivo")
    url = answer_call(server, call, creds)

    async def drained() -> None:
        async with connect(url) as ws:
            for message in call.handshake():
                await ws.send(json.dumps(message))
            await asyncio.wait_for(ws.recv(), 15)
            server.signal(signal.SIGTERM)
            await asyncio.sleep(0)
            late = Call.new("twilio").webhook(server.url, creds)
            async with httpx.AsyncClient() as client:
                for _ in range(200):
                    answer = await client.send(late)
                    if answer.status_code == 503:
                        break
                    await asyncio.sleep(0.02)
            assert answer.status_code == 503
            assert answer.json()["error"] == "draining"
            await ws.send(json.dumps(call.dtmf("#")))  # the call ends; the drain completes
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(15):
                    while True:
                        await ws.recv()

    asyncio.run(drained())
    assert server.wait(30) == 0
    assert "twilio call refused: draining" in server.log()


def test_cancelled_call_is_closed_and_hung_up(server_for: ServerFactory) -> None:
    with FakePhoneApis() as apis:
        server, creds = phone_server(server_for, apis)
        call = Call.new("twilio")
        apis.live_calls.add(call.call_id)
        url = answer_call(server, call, creds)

        async def cancelled() -> tuple[int, str]:
            async with connect(url) as ws:
                for message in call.handshake():
                    await ws.send(json.dumps(message))
                await asyncio.wait_for(ws.recv(), 15)
                async with httpx.AsyncClient() as client:
                    deleted = await client.delete(f"{server.url}/sessions/{call.call_id}")
                    assert deleted.status_code == 202
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(15):
                        while True:
                            await ws.recv()
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code, closed.value.rcvd.reason

        assert asyncio.run(cancelled()) == (1001, "cancelled by request")
        wait_for(lambda: apis.hang_ups == [("twilio", call.call_id)])


def test_hang_up_refused_by_the_provider_is_logged(server_for: ServerFactory) -> None:
    with FakePhoneApis() as apis:
        server, creds = phone_server(server_for, apis)
        call = Call.new("plivo")  # not a live call at the fake: 404
        url = answer_call(server, call, creds)
        asyncio.run(converse(url, call))
        wait_for(lambda: apis.refused == [("plivo", 404)])
        wait_for(lambda: "plivo call already ended (its REST API answered 404)" in server.log())


def test_public_url_and_trusted_proxy_set_the_stream_url(server_for: ServerFactory) -> None:
    public = "https://bots.example.com"
    server, creds = phone_server(server_for, None, PUBLIC_URL=public)
    call = Call.new("twilio")
    answer = send(server, call.webhook(server.url, creds, url_base=public))
    assert answer.status_code == 200, answer.text
    url = stream_url("twilio", answer)
    assert url.startswith(f"wss://bots.example.com/ws/phone/{call.call_id}/")
    report, _, _ = asyncio.run(converse(local(server, url), call))
    assert report["session_id"] == call.call_id
    # signed for the server's own address, not the public one: refused
    assert send(server, Call.new("twilio").webhook(server.url, creds)).status_code == 403

    proxied, creds = phone_server(
        server_for, None, TRUSTED_PROXIES="127.0.0.1", PENDING_SESSION_TIMEOUT_SECS=QUICK_EXPIRY
    )
    call = Call.new("telnyx")
    request = call.webhook(proxied.url, creds)
    request.headers["X-Forwarded-Proto"] = "https"
    request.headers["X-Forwarded-Host"] = "edge.example.com"
    url = stream_url("telnyx", send(proxied, request))
    assert url.startswith(f"wss://edge.example.com/ws/phone/{call.call_id}/")

    # No trusted proxy: headers ignored.
    direct, creds = phone_server(server_for, None, PENDING_SESSION_TIMEOUT_SECS=QUICK_EXPIRY)
    call = Call.new("telnyx")
    request = call.webhook(direct.url, creds)
    request.headers["X-Forwarded-Host"] = "evil.example.com"
    url = stream_url("telnyx", send(direct, request))
    assert url.startswith(f"{direct.ws_url}/ws/phone/")


def test_webhook_for_unknown_provider_or_without_call_id(server_for: ServerFactory) -> None:
    server, creds = phone_server(server_for, None)
    answer = httpx.post(f"{server.url}/telephony/vonage")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no phone provider 'vonage' (twilio, telnyx, plivo, exotel)"
    auth = base64.b64encode(f"x:{creds.exotel_secret}".encode()).decode()
    answer = httpx.get(f"{server.url}/telephony/exotel", headers={"Authorization": f"Basic {auth}"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "bad_request", "detail": "the webhook sent no CallSid"}
    assert sessions(server) == []
