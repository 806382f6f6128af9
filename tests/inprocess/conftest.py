from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.bot_loader import load_bot
from app.main import create_app
from tests.bots import recorder
from tests.inprocess.clients import ClientFactory
from tests.settings import explicit_settings


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """Build an in-process app with the given settings (and bot module) and a client for it,
    lifespan included."""
    clients: list[TestClient] = []

    def build(bot_module: str = "tests.bots.recorder", **values: Any) -> TestClient:
        # Readiness by loop lag off unless asked for (see tests/e2e/conftest.py).
        settings = explicit_settings(bot_module=bot_module, **{"max_loop_lag_secs": 60, **values})
        client = TestClient(create_app(settings, load_bot(bot_module)))
        client.__enter__()
        clients.append(client)
        return client

    recorder.RECORDS.clear()
    yield build
    for client in clients:
        client.__exit__(None, None, None)
