"""Security checks. The API-key test is generated from the OpenAPI schema, so a new route
that forgets the key fails it unless it is listed here as deliberately open."""

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests import secrets
from tests.bots import recorder

OPEN_ROUTES = {
    ("get", "/livez"),
    ("get", "/readyz"),
    ("get", "/health"),
    ("get", "/metrics"),
}
KEY = secrets.API_KEY


def operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [(method, path) for path, item in paths.items() for method in item]


def call(client: TestClient, method: str, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    url = path.replace("{session_id}", "some-session")
    return client.request(
        method.upper(), url, headers=headers, json={} if method == "post" else None
    )


def test_every_listed_route_requires_the_key_unless_deliberately_open(client_for) -> None:
    client = client_for(api_key=KEY)
    listed = operations(client)
    guarded = [op for op in listed if op not in OPEN_ROUTES]
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


def test_schema_declares_bearer_auth_when_a_key_is_set(client_for) -> None:
    schema = client_for(api_key=KEY).get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert schema["paths"]["/bot"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in schema["paths"]["/livez"]["get"]


def test_websocket_requires_the_key(client_for) -> None:
    client = client_for(api_key=KEY)
    with (
        client.websocket_connect("/ws?token=nope") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4401, "invalid API key")
    with client.websocket_connect(f"/ws?token={KEY}") as ws:
        assert ws.receive_json()["class"] == "WebSocketSessionArguments"


def test_cors_is_off_by_default(client_for) -> None:
    client = client_for()
    preflight = client.options(
        "/start",
        headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.post("/start", json={}, headers={"origin": "https://app.example.com"})
    assert response.status_code == 201
    assert "access-control-allow-origin" not in response.headers


def test_allowed_origins_enable_cors_for_those_origins_only(client_for) -> None:
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
    other = client.post("/start", json={}, headers={"origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in other.headers
