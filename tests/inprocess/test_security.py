"""Security checks. The API-key test is generated from the OpenAPI schema, so a new route
that forgets the key fails it unless it is listed here as deliberately open."""

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests import secrets
from tests.bots import recorder
from tests.inprocess.clients import ClientFactory
from tests.metrics import parse, value

OPEN_ROUTES = {
    ("get", "/livez"),
    ("get", "/readyz"),
    ("get", "/health"),
    ("get", "/metrics"),
}
# A session's own WebRTC offer URL: its single-use token (from POST /start) or its peer's
# pc_id is the credential, so a browser never holds the API key (tests/pipecat/test_webrtc.py).
SESSION_CREDENTIAL_ROUTES = {
    ("post", "/sessions/{session_id}/api/offer"),
    ("patch", "/sessions/{session_id}/api/offer"),
}
KEY = secrets.API_KEY


def operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(method, path) for path, item in paths.items() for method in item]


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> httpx2.Response:
    url = path.replace("{session_id}", "some-session")
    return client.request(
        method.upper(), url, headers=headers, json={} if method == "post" else None
    )


def test_every_listed_route_requires_the_key_unless_deliberately_open(
    client_for: ClientFactory,
) -> None:
    client = client_for(api_key=KEY)
    listed = operations(client)
    guarded = [op for op in listed if op not in OPEN_ROUTES | SESSION_CREDENTIAL_ROUTES]
    assert set(listed) >= SESSION_CREDENTIAL_ROUTES
    assert len(guarded) >= 5  # /start, /bot, /sessions, /sessions/{id} GET and DELETE
    for method, path in guarded:
        for headers in ({}, {"authorization": "Bearer wrong-key"}, {"authorization": KEY}):
            response = call(client, method, path, headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"] == "unauthorized"
            assert KEY not in response.text and "wrong-key" not in response.text
        ok = call(client, method, path, {"authorization": f"Bearer {KEY}"})
        assert ok.status_code != 401, (method, path)
    for method, path in OPEN_ROUTES:
        assert call(client, method, path, {}).status_code == 200
    assert [r["class"] for r in recorder.RECORDS] == ["PipecatSessionArguments"] * 2


def test_schema_declares_bearer_auth_when_a_key_is_set(client_for: ClientFactory) -> None:
    schema = client_for(api_key=KEY).get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert schema["paths"]["/bot"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in schema["paths"]["/livez"]["get"]


def test_missing_or_wrong_key_is_401_with_the_reason_and_counted(client_for: ClientFactory) -> None:
    client = client_for(api_key=KEY)
    missing = client.post("/start", json={})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {
        "error": "unauthorized",
        "detail": "missing API key: send Authorization: Bearer <API_KEY>",
    }
    wrong = client.post("/bot", headers={"authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid API key")
    for path in ("/sessions", "/sessions/x"):
        assert client.get(path).status_code == 401
    assert client.delete("/sessions/x").status_code == 401
    assert client.get("/health").json()["activeSessions"] == 0
    ok = client.post("/bot", headers={"authorization": f"Bearer {KEY}"})
    assert (ok.status_code, ok.json()) == (200, {})
    samples = parse(client.get("/metrics").text)
    assert (
        value(samples, "botdock_sessions_rejected_total", kind="unknown", reason="unauthorized")
        == 5
    )
    assert value(samples, "botdock_sessions_started_total", kind="pipecat") == 1


def test_invalid_header_without_key_is_still_401(client_for: ClientFactory) -> None:
    client = client_for(api_key=KEY)
    response = client.post("/bot", headers={"x-pcc-max-session-seconds": "-1"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing API key: send Authorization: Bearer <API_KEY>"),
        ("?token=nope", "invalid API key"),
    ],
    ids=["no-key", "wrong-key"],
)
def test_websocket_without_the_key_is_closed_4401(
    client_for: ClientFactory, query: str, reason: str
) -> None:
    client = client_for(api_key=KEY)
    with (
        client.websocket_connect(f"/ws{query}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4401, reason)
    assert recorder.RECORDS == []


def test_websocket_key_in_query_or_header_opens_the_session(client_for: ClientFactory) -> None:
    client = client_for(api_key=KEY)
    with client.websocket_connect(f"/ws?token={KEY}") as ws:
        assert ws.receive_json()["class"] == "WebSocketSessionArguments"
    with client.websocket_connect("/ws", headers={"Authorization": f"Bearer {KEY}"}) as ws:
        ws.receive_json()
        ws.send_text("hi")
        assert ws.receive_text() == "hi"


def test_cors_is_off_by_default(client_for: ClientFactory) -> None:
    client = client_for()
    preflight = client.options(
        "/start",
        headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.post("/start", json={}, headers={"origin": "https://app.example.com"})
    assert response.status_code == 201
    assert "access-control-allow-origin" not in response.headers


def test_allowed_origins_enable_cors_for_those_origins_only(client_for: ClientFactory) -> None:
    client = client_for(allowed_origins="https://app.example.com, https://admin.example.com")
    preflight = client.options(
        "/start",
        headers={
            "origin": "https://admin.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://admin.example.com"
    response = client.post("/start", json={}, headers={"origin": "https://app.example.com"})
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    # The page may read the session id the answer carries in its headers.
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert exposed == {"x-session-id", "location"}
    assert response.headers["x-session-id"]
    other = client.post("/start", json={}, headers={"origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in other.headers
