"""End to end: the real `python -m app` process on a free port, real HTTP and WebSocket
clients: serving with the template's echo bot, probes while a sync bot blocks its thread,
start-up errors, and what the process logs. Each route's answers are pinned in process
(inprocess/test_routes.py, inprocess/test_bad_input.py)."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.helpers import wait_until
from tests.server import ServerFactory, run_to_exit


def test_echo_bot_serves_every_kind_with_no_api_keys(server_for: ServerFactory) -> None:
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


def test_bot_traceback_is_logged_on_lines_with_its_session_id(server_for: ServerFactory) -> None:
    server = server_for()
    response = httpx.post(
        f"{server.url}/bot", json={"raise": "exploded"}, headers={"x-daily-session-id": "bad-1"}
    )
    assert response.status_code == 500
    log = server.log()
    assert "RuntimeError: exploded" in log  # the traceback is logged
    traceback_lines = [line for line in log.splitlines() if "bot raised" in line]
    assert traceback_lines and all("bad-1" in line for line in traceback_lines)


def test_sync_bot_blocking_its_thread_does_not_block_probes(
    server_for: ServerFactory, tmp_path: Path
) -> None:
    server = server_for({"BOT_MODULE": "tests.bots.sync_blocker"})
    release = tmp_path / "release"  # the bot blocks its thread until this file exists

    async def scenario() -> int:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            body = {"until": str(release)}
            session = asyncio.create_task(client.post("/bot", json=body))

            async def running() -> bool:
                return bool((await client.get("/health")).json()["activeSessions"] == 1)

            await wait_until(running)
            for _ in range(5):
                assert (await client.get("/livez")).status_code == 200
                assert (await client.get("/readyz")).status_code == 200
            assert not session.done()
            release.touch()
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


def test_every_session_line_carries_the_session_id(server_for: ServerFactory) -> None:
    server = server_for()
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "log-sess-7"})
    lines = [line for line in server.log().splitlines() if "log-sess-7" in line]
    messages = [line.rsplit(" | ", 1)[-1] for line in lines]
    assert messages[0] == "session started kind=pipecat timeout=7200s"
    assert "recorder bot entered" in messages
    assert messages[-1].startswith("session completed kind=pipecat duration=")


def test_json_logs_are_one_object_per_line_and_probes_not_logged(server_for: ServerFactory) -> None:
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


def test_access_log_can_be_turned_off(server_for: ServerFactory) -> None:
    server = server_for({"ACCESS_LOG": "false"})
    httpx.post(f"{server.url}/bot", headers={"x-daily-session-id": "quiet-1"})
    log = server.log()
    assert "session completed kind=pipecat" in log
    assert "uvicorn.access" not in log
