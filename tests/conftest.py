from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.bot_loader import load_bot
from app.main import create_app
from tests import secrets
from tests.bots import recorder
from tests.fake_daily import FakeDaily
from tests.server import ServerProcess
from tests.settings import explicit_settings


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """Build an in-process app with the given settings (and bot module) and a client for it,
    lifespan included."""
    clients: list[TestClient] = []

    def build(bot_module: str = "tests.bots.recorder", **values: Any) -> TestClient:
        settings = explicit_settings(bot_module=bot_module, **values)
        client = TestClient(create_app(settings, load_bot(bot_module)))
        client.__enter__()
        clients.append(client)
        return client

    recorder.RECORDS.clear()
    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def server_for() -> Iterator[Callable[..., ServerProcess]]:
    """Start the real service as a process; stopped at the end of the test."""
    servers: list[ServerProcess] = []

    def start(env: Mapping[str, str] | None = None, wait: bool = True) -> ServerProcess:
        server = ServerProcess({"BOT_MODULE": "tests.bots.recorder", **(env or {})})
        servers.append(server)
        server.spawn()
        if wait:
            server.wait_answering("/livez")
        return server

    yield start
    for server in servers:
        server.stop(timeout=10)
        log = server.log()
        server.discard()
        leaked = [secret for secret in secrets.ALL if secret in log]
        assert not leaked, f"secret values reached the service log: {leaked}"


@pytest.fixture
def fake_daily() -> Iterator[FakeDaily]:
    """A fake Daily REST API on a loopback port, expecting the key `test-key`."""
    fake = FakeDaily("test-key").start()
    yield fake
    fake.stop()
