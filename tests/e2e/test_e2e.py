"""End to end: the real `python -m app` process on a free port, real HTTP and WebSocket
clients."""

import asyncio
import base64
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import b64, records
from tests.server import run_to_exit


def test_pipecat_cloud_bot_call_with_room_reaches_bot_as_daily(server_for, tmp_path) -> None:
    record_file = tmp_path / "records.jsonl"
    server = server_for({"RECORD_FILE": str(record_file)})
    response = httpx.post(
        f"{server.url}/bot",
        json={"greeting": "hi"},
        headers={
            "x-daily-session-id": "3f1c2a9e-pcc",
            "x-daily-room-url": "https://acme.daily.co/AbCd",
            "x-daily-room-token": "eyJ.room.token",
        },
    )
    assert response.status_code == 200 and response.json() == {}
    assert records(record_file) == [
        {
            "class": "DailySessionArguments",
            "session_id": "3f1c2a9e-pcc",
            "body": {"greeting": "hi"},
            "room_url": "https://acme.daily.co/AbCd",
            "token": "eyJ.room.token",
        }
    ]


def test_pipecat_cloud_bot_call_without_room_is_plain(server_for, tmp_path) -> None:
    record_file = tmp_path / "records.jsonl"
    server = server_for({"RECORD_FILE": str(record_file)})
    response = httpx.post(
        f"{server.url}/bot", json={"n": 1}, headers={"x-daily-session-id": "plain-1"}
    )
    assert response.status_code == 200
    assert records(record_file) == [
        {"class": "PipecatSessionArguments", "session_id": "plain-1", "body": {"n": 1}}
    ]


async def test_websocket_echo_with_base64_body(server_for) -> None:
    server = server_for()
    async with connect(f"{server.ws_url}/ws?body={b64({'user': 'u1'})}") as ws:
        first = json.loads(await ws.recv())
        assert first["class"] == "WebSocketSessionArguments"
        assert first["body"] == {"user": "u1"}
        for text in ("one", "two", "three"):
            await ws.send(text)
            assert await ws.recv() == text


async def test_websocket_mode_start_then_connect_to_ws_url(server_for) -> None:
    server = server_for({"SESSION_MODE": "websocket"})
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server.url}/start", json={"body": {"topic": "x"}})
    assert response.status_code == 201
    answer = response.json()
    assert answer["wsUrl"] == f"{server.ws_url}/ws?session_id={answer['sessionId']}"
    async with connect(answer["wsUrl"]) as ws:
        first = json.loads(await ws.recv())
        assert first == {
            "class": "WebSocketSessionArguments",
            "session_id": answer["sessionId"],
            "body": {"topic": "x"},
        }
        await ws.send("ping")
        assert await ws.recv() == "ping"


def test_echo_bot_serves_every_kind_with_no_api_keys(server_for) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.echo"})

    async def echo() -> str:
        async with connect(f"{server.ws_url}/ws") as ws:
            await ws.send("hello bot")
            return str(await ws.recv())

    assert asyncio.run(echo()) == "hello bot"
    assert httpx.post(f"{server.url}/bot", json={"x": 1}).status_code == 200
    headers = {"x-daily-room-url": "https://a.daily.co/r", "x-daily-room-token": "tok"}
    assert httpx.post(f"{server.url}/bot", headers=headers).status_code == 200
    assert "plain session with body {'x': 1}" in server.log()
    assert "Daily session for room https://a.daily.co/r" in server.log()


# -- bad input against the real process ---------------------------------------------------


def test_bad_requests_get_exact_errors_and_server_stays_live(server_for) -> None:
    server = server_for({"MAX_BODY_BYTES": "1000"})
    cases = [
        (
            b"{bad",
            "application/json",
            400,
            "request body is malformed JSON: Expecting property "
            "name enclosed in double quotes at position 1",
        ),
        (b"[1, 2]", "application/json", 422, "request body must be a JSON object, got an array"),
        (b"{}", "text/plain", 415, "Content-Type must be application/json, got 'text/plain'"),
        (
            b'{"a": "' + b"x" * 2000 + b'"}',
            "application/json",
            413,
            "request body is larger than MAX_BODY_BYTES (1000 bytes)",
        ),
    ]
    for content, content_type, status, detail in cases:
        response = httpx.post(
            f"{server.url}/bot", content=content, headers={"content-type": content_type}
        )
        assert (response.status_code, response.json()["detail"]) == (status, detail)
    response = httpx.get(f"{server.url}/sessions/unknown-id")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_session", "detail": "no active session unknown-id"}
    assert httpx.get(f"{server.url}/livez").status_code == 200
    assert httpx.get(f"{server.url}/health").json()["activeSessions"] == 0


async def test_websocket_bad_body_is_refused_with_reason(server_for) -> None:
    server = server_for()
    cases = [
        ("%%%", 4400, "query parameter 'body' is not valid base64"),
        (
            base64.b64encode(b"not json").decode(),
            4400,
            "decoded 'body' is malformed JSON: Expecting value at position 0",
        ),
    ]
    for body, code, reason in cases:
        async with connect(f"{server.ws_url}/ws?body={body}") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
    assert httpx.get(f"{server.url}/livez").status_code == 200


def test_bot_that_raises_fails_only_its_session(server_for) -> None:
    server = server_for()
    response = httpx.post(
        f"{server.url}/bot", json={"raise": "exploded"}, headers={"x-daily-session-id": "bad-1"}
    )
    assert response.status_code == 500
    assert response.json()["error"] == "bot_failed"
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert httpx.post(f"{server.url}/bot", json={}).status_code == 200
    log = server.log()
    assert "RuntimeError: exploded" in log  # the traceback is logged
    traceback_lines = [line for line in log.splitlines() if "bot raised" in line]
    assert traceback_lines and all("bad-1" in line for line in traceback_lines)


def test_sync_bot_sleeping_does_not_block_probes(server_for) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.sync_sleeper"})

    async def scenario() -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            session = asyncio.create_task(client.post(f"{server.url}/bot", json={"sleep": 3}))
            await asyncio.sleep(0.2)
            for _ in range(10):
                assert (await client.get(f"{server.url}/livez")).status_code == 200
                assert (await client.get(f"{server.url}/health")).json()["activeSessions"] == 1
                await asyncio.sleep(0.05)
            assert not session.done()  # the probes were answered while the bot slept
            return (await session).status_code

    assert asyncio.run(scenario()) == 200


def test_invalid_session_mode_stops_start_up() -> None:
    result = run_to_exit({"SESSION_MODE": "carrier-pigeon"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "botdock: invalid configuration: SESSION_MODE: Input should be 'auto', 'pipecat', "
        "'daily' or 'websocket' (got 'carrier-pigeon')"
    ]


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (
            "tests.bots.missing",
            "cannot start: BOT_MODULE='tests.bots.missing': no module named "
            "'tests.bots.missing' (is the file there, and is the name a Python module path such "
            "as 'bot'?)",
        ),
        (
            "tests.bots.no_bot",
            "cannot start: BOT_MODULE='tests.bots.no_bot' defines no function named 'bot'",
        ),
        (
            "tests.bots.no_args",
            "cannot start: BOT_MODULE='tests.bots.no_args': bot() must take "
            "one argument, the session arguments: def bot(args) or async def bot(args)",
        ),
    ],
)
def test_unusable_bot_module_stops_start_up_with_one_line(module: str, message: str) -> None:
    result = run_to_exit({"BOT_MODULE": module})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(message)
    assert "Uvicorn running" not in result.stderr


# -- logging ------------------------------------------------------------------------------


def test_every_session_line_carries_the_session_id(server_for) -> None:
    server = server_for()
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "log-sess-7"})
    lines = [line for line in server.log().splitlines() if "log-sess-7" in line]
    messages = [line.rsplit(" | ", 1)[-1] for line in lines]
    assert messages[0] == "session started kind=pipecat timeout=7200s"
    assert "recorder bot entered" in messages
    assert messages[-1].startswith("session completed kind=pipecat duration=")


def test_json_logs_are_one_object_per_line_and_probes_not_logged(server_for) -> None:
    server = server_for({"LOG_FORMAT": "json"})
    for _ in range(3):
        httpx.get(f"{server.url}/livez")
        httpx.get(f"{server.url}/readyz")
        httpx.get(f"{server.url}/health")
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "json-1"})
    entries = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert all({"time", "level", "message", "logger", "session_id"} <= set(e) for e in entries)
    access = [e["message"] for e in entries if e["logger"] == "uvicorn.access"]
    assert access and all("/bot" in m for m in access)
    assert all("/livez" not in m and "/readyz" not in m for m in access)
    in_session = [e for e in entries if e["session_id"] == "json-1"]
    assert [e["message"] for e in in_session][:2] == [
        "session started kind=pipecat timeout=7200s",
        "recorder bot entered",
    ]


def test_access_log_can_be_turned_off(server_for) -> None:
    server = server_for({"ACCESS_LOG": "false"})
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "quiet-1"})
    log = server.log()
    assert "session completed kind=pipecat" in log
    assert "uvicorn.access" not in log
