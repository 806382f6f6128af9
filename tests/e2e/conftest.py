from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from tests import secrets
from tests.server import ServerFactory, ServerProcess

# MAX_LOOP_LAG_SECS off (60 s) unless a test sets it: a test that floods the server on a busy
# two-core machine lags its loop, and readiness by loop lag has tests of its own
# (test_loop_health.py); elsewhere `/readyz` must answer for what the test checks.
_DEFAULTS = {"BOT_MODULE": "tests.bots.recorder", "MAX_LOOP_LAG_SECS": "60"}


@pytest.fixture
def server_for() -> Iterator[ServerFactory]:
    """Start the real service as a process (the recorder bot unless BOT_MODULE says
    otherwise); stopped at the end of the test, when its log must hold no test secret."""
    servers: list[ServerProcess] = []

    def start(env: Mapping[str, str] | None = None, wait: bool = True) -> ServerProcess:
        server = ServerProcess({**_DEFAULTS, **(env or {})})
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
