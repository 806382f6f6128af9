"""Without Pipecat's WebRTC extra (the default environment has no Pipecat at all), the service
runs as ever, and every WebRTC start answers what to install; nothing starts."""

from __future__ import annotations

import httpx
import pytest

from tests.server import ServerFactory

OFFER = {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"}
UNAVAILABLE = {
    "error": "webrtc_unavailable",
    "detail": "WebRTC sessions need Pipecat's WebRTC extra, which is not installed: install "
    "pipecat-ai[webrtc] (in this project: uv sync --group pipecat)",
}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/api/offer", OFFER, {}),
        ("PATCH", "/api/offer", {"pc_id": "x", "candidates": []}, {}),
        ("POST", "/sessions/some-session/api/offer?token=t", OFFER, {}),
        ("PATCH", "/sessions/some-session/api/offer", {"pc_id": "x", "candidates": []}, {}),
        ("POST", "/start", {"transport": "webrtc"}, {}),
        ("POST", "/bot", {}, {"x-daily-transport-type": "webrtc"}),
    ],
)
def test_webrtc_without_the_extra_says_what_to_install(
    server_for: ServerFactory,
    method: str,
    path: str,
    body: dict[str, object],
    headers: dict[str, str],
) -> None:
    server = server_for()
    response = httpx.request(method, server.url + path, json=body, headers=headers, timeout=10)
    assert response.status_code == 501
    assert response.json() == UNAVAILABLE
    health = httpx.get(server.url + "/health", timeout=10).json()
    assert (health["status"], health["activeSessions"]) == ("ok", 0)
    sessions = httpx.get(server.url + "/sessions", timeout=10).json()
    assert sessions == {"sessions": []}
