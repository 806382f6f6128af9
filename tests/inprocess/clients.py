"""What the in-process tests share besides the `client_for` fixture: its type, and the app's
session manager behind a client, for the few tests that drive or read it directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.sessions import SessionManager
from app.state import Services

T = TypeVar("T")


class ClientFactory(Protocol):
    """`client_for(bot_module=..., **settings)`: an in-process app with exactly these
    settings (field names, lower case) and a started `TestClient` for it."""

    def __call__(self, bot_module: str = "tests.bots.recorder", **values: Any) -> TestClient: ...


def manager(client: TestClient) -> SessionManager:
    """The session manager of the app behind `client`."""
    assert isinstance(client.app, FastAPI)
    services: Services = client.app.state.services
    return services.manager


def on_loop(client: TestClient, call: Callable[..., T], *args: Any) -> T:
    """Run `call(*args)` in the app's event loop thread, as the routes would."""
    assert client.portal is not None, "the client is not started"
    result: T = client.portal.call(call, *args)
    return result
