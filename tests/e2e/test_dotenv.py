"""`.env` reaches the bot as Pipecat Cloud's secrets do: as environment variables, with what
the environment already sets winning. The server runs from a scratch folder holding a `.env`
written here (never the repository's)."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.helpers import b64
from tests.server import ServerProcess


async def ask(server: ServerProcess, names: list[str]) -> dict[str, str | None]:
    async with connect(f"{server.ws_url}/ws?body={b64({'names': names})}") as ws:
        answer: dict[str, str | None] = json.loads(await ws.recv())
        return answer


def test_dotenv_values_reach_the_bot_and_the_environment_wins() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="botdock-dotenv-"))
    (workdir / ".env").write_text(
        "MAX_SESSIONS=3\nBOTDOCK_TEST_BOT_KEY=from-dotenv\nBOTDOCK_TEST_SHADOWED=from-dotenv\n"
    )
    server = ServerProcess(
        {"BOT_MODULE": "tests.bots.environment", "BOTDOCK_TEST_SHADOWED": "from-environment"},
        workdir=workdir,
    )
    server.start()
    try:
        answer = asyncio.run(
            ask(server, ["BOTDOCK_TEST_BOT_KEY", "BOTDOCK_TEST_SHADOWED", "BOTDOCK_TEST_UNSET"])
        )
        assert answer == {
            "BOTDOCK_TEST_BOT_KEY": "from-dotenv",
            "BOTDOCK_TEST_SHADOWED": "from-environment",
            "BOTDOCK_TEST_UNSET": None,
        }
        assert httpx.get(f"{server.url}/health").json()["maxSessions"] == 3
    finally:
        server.stop()
        shutil.rmtree(workdir)
