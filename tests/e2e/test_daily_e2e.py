"""End to end: the real `python -m app` process creating Daily rooms through the fake Daily API
on loopback (`DAILY_API_URL`), with real HTTP on both sides."""

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.fake_daily import FakeDaily, Reply
from tests.helpers import records, wait_for
from tests.server import ServerFactory

KEY = "test-key"


def test_daily_start_end_to_end_bot_gets_owner_token_caller_participant_token(
    server_for: ServerFactory, fake_daily: FakeDaily, tmp_path: Path
) -> None:
    record_file = tmp_path / "records.jsonl"
    server = server_for(
        {
            "SESSION_MODE": "daily",
            "DAILY_API_KEY": KEY,
            "DAILY_API_URL": fake_daily.url,
            "RECORD_FILE": str(record_file),
            "LOG_LEVEL": "DEBUG",  # even at DEBUG, no secret is logged
        }
    )
    before = time.time()
    response = httpx.post(
        f"{server.url}/start",
        json={
            "createDailyRoom": True,
            "body": {"user": "ada"},
            "dailyRoomProperties": {"enable_prejoin_ui": False},
            "dailyMeetingTokenProperties": {"user_name": "Ada"},
        },
    )
    after = time.time()
    assert response.status_code == 201
    owner, participant = fake_daily.token(owner=True), fake_daily.token(owner=False)
    session_id = response.headers["x-session-id"]
    assert response.json() == {
        "dailyRoom": "https://botdock-test.daily.co/room-1",
        "dailyToken": participant,
    }
    wait_for(lambda: len(records(record_file)) == 1)
    assert records(record_file) == [
        {
            "class": "DailySessionArguments",
            "session_id": session_id,
            "body": {"user": "ada"},
            "room_url": "https://botdock-test.daily.co/room-1",
            "token": owner,
        }
    ]

    assert fake_daily.paths() == [
        "POST /v1/rooms",
        "POST /v1/meeting-tokens",
        "POST /v1/meeting-tokens",
    ]
    assert {r.headers["authorization"] for r in fake_daily.requests} == {f"Bearer {KEY}"}
    room_request, *token_requests = fake_daily.requests
    exp = room_request.json["properties"]["exp"]
    assert int(before) + 7200 <= exp <= int(after) + 7201
    assert room_request.json == {
        "privacy": "private",
        "properties": {"enable_prejoin_ui": False, "exp": exp, "eject_at_room_exp": True},
    }
    assert sorted(
        (r.json for r in token_requests), key=lambda body: not body["properties"]["is_owner"]
    ) == [
        {"properties": {"room_name": "room-1", "is_owner": True, "exp": exp}},
        {"properties": {"user_name": "Ada", "room_name": "room-1", "is_owner": False, "exp": exp}},
    ]

    # A failing start, logged too; then the session's own lines.
    fake_daily.reply("/rooms", Reply(500, {"error": "server-error", "info": "try later"}))
    failed = httpx.post(f"{server.url}/start", json={"createDailyRoom": True})
    assert failed.status_code == 502
    assert failed.json()["error"] == "daily_server_error"
    assert httpx.get(f"{server.url}/health").json()["activeSessions"] == 0
    assert httpx.get(f"{server.url}/readyz").status_code == 200

    wait_for(lambda: "session completed kind=daily" in server.log())
    log = server.log()
    session_lines = [line for line in log.splitlines() if session_id in line]
    expires = datetime.fromtimestamp(exp, UTC).isoformat(timespec="seconds")
    assert any(
        line.endswith(f"Daily room room-1 created; it expires at {expires}")
        for line in session_lines
    )
    assert "Daily room not created: daily_server_error Daily failed: HTTP 500" in log
    for secret in (KEY, owner, participant):
        assert secret not in log


def test_bot_call_with_daily_down_answers_502_and_service_stays_ready(
    server_for: ServerFactory, fake_daily: FakeDaily, tmp_path: Path
) -> None:
    record_file = tmp_path / "records.jsonl"
    server = server_for(
        {
            "SESSION_MODE": "daily",
            "DAILY_API_KEY": "sk-not-the-right-one",
            "DAILY_API_URL": fake_daily.url,
            "RECORD_FILE": str(record_file),
        }
    )
    response = httpx.post(f"{server.url}/bot", json={}, headers={"x-daily-session-id": "b-1"})
    assert response.status_code == 502
    assert response.json() == {
        "error": "daily_unauthorized",
        "detail": "Daily rejected DAILY_API_KEY: HTTP 401 on POST /rooms "
        "(authentication-error: the API key is not valid)",
    }
    room = {"x-daily-room-url": "https://example.daily.co/r", "x-daily-room-token": "own-t"}
    assert httpx.post(f"{server.url}/bot", json={}, headers=room).status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert [r["token"] for r in records(record_file)] == ["own-t"]
    assert "sk-not-the-right-one" not in server.log()
