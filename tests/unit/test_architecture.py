"""The arrows that must never exist between the parts (docs/architecture.md), checked by
importing each part in a fresh interpreter and looking at what it loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.server import ROOT


def loaded_by(module: str) -> set[str]:
    """Every module a fresh interpreter has loaded after `import module`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def top_level(modules: set[str], *roots: str) -> set[str]:
    return {m for m in modules if m.split(".")[0] in roots}


@pytest.mark.parametrize(
    "module",
    [
        "app.sessions",
        "app.start_flow",
        "app.daily",
        "app.room_options",
        "app.modes",
        "app.session_tokens",
        "app.loop_monitor",
        "app.webrtc",
        "app.telephony.providers",
        "app.telephony.stream",
        "app.telephony.hangup",
        "app.workers.pool",
        "app.workers.protocol",
        "app.workers.runner",
    ],
)
def test_engine_start_flow_and_daily_client_load_no_http_framework(module: str) -> None:
    assert top_level(loaded_by(module), "fastapi", "starlette", "uvicorn") == set()


def test_arguments_import_nothing_of_the_service() -> None:
    ours = {m for m in loaded_by("app.arguments") if m.startswith("app.")}
    assert ours == {"app.arguments"}


def test_daily_client_reaches_neither_routes_nor_engine() -> None:
    ours = {m for m in loaded_by("app.daily") if m.startswith("app.")}
    assert ours <= {"app.daily", "app.config", "app.exceptions"}


def test_webrtc_peers_load_neither_pipecat_nor_aiortc_until_an_offer_arrives() -> None:
    loaded = loaded_by("app.webrtc")
    assert top_level(loaded, "pipecat", "aiortc") == set()
    assert {m for m in loaded if m.startswith("app.")} <= {"app.webrtc", "app.exceptions"}


def test_engine_runs_bots_through_a_runner_it_is_given() -> None:
    """The session manager imports neither the bot loader nor the workers: `create_app` gives
    it a `BotRunner` (the loaded bot, or the process runner)."""
    ours = {m for m in loaded_by("app.sessions") if m.startswith("app.")}
    assert "app.bot_loader" not in ours
    assert not any(m.startswith("app.workers") for m in ours)
