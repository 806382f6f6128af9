"""The type of the `client_for` fixture, for the in-process tests' annotations."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi.testclient import TestClient


class ClientFactory(Protocol):
    """`client_for(bot_module=..., **settings)`: an in-process app with exactly these
    settings (field names, lower case) and a started `TestClient` for it."""

    def __call__(self, bot_module: str = "tests.bots.recorder", **values: Any) -> TestClient: ...
