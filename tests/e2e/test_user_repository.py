"""The template's suite inside a user's repository. A copy of the project gets what a user's
checkout has and the template must not depend on: a `.env` that changes every setting the
tests rely on, a `bot.py` of their own, and botdock settings exported in the shell (some in
lower case, which the service reads too). A representative part of the suite, run there
with this interpreter, must pass: servers start from a scratch folder without that `.env` or
those variables, in-process apps take only the settings a test gives, and no test loads
`bot.py`. The repository itself is never written to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project import copy_project

pytestmark = pytest.mark.slow

HOSTILE_DOTENV = """\
SESSION_MODE=websocket
BOT_MODULE=nope
HOST=203.0.113.7
PORT=1
MAX_SESSIONS=1
SESSION_TIMEOUT_SECS=0.1
DRAIN_TIMEOUT_SECS=0
API_KEY=key-from-dotenv
LOG_FORMAT=json
LOG_LEVEL=ERROR
ACCESS_LOG=false
"""
HOSTILE_SHELL = {
    "MAX_SESSIONS": "1",
    "log_format": "json",
    "Session_Mode": "pipecat",
    "API_KEY": "key-from-the-shell",
    "drain_timeout_secs": "0",
    "BOT_MODULE": "bot",
    "port": "1",
    "MAX_BODY_BYTES": "1",
}
USER_BOT = '''\
"""Someone's own bot: never ready, and failing every session it is given."""


def readyz() -> bool:
    return False


def bot(args: object) -> None:
    raise RuntimeError("the user's bot.py ran inside the template's tests")
'''
# Each part of the suite that a .env, the shell or bot.py could reach.
SUBSET = [
    "tests/unit/test_config.py",
    "tests/inprocess/test_routes.py",
    "tests/e2e/test_e2e.py::test_echo_bot_serves_every_kind_with_no_api_keys",
    "tests/e2e/test_e2e.py::test_every_session_line_carries_the_session_id",
    "tests/e2e/test_e2e.py::test_invalid_session_mode_stops_start_up",
    "tests/e2e/test_lifecycle.py::test_burst_over_capacity_gets_exactly_max_sessions",
    "tests/e2e/test_lifecycle.py::test_sigterm_drains_then_exits_zero",
]


def test_suite_passes_in_a_repository_with_its_own_env_shell_and_bot(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / ".env").write_text(HOSTILE_DOTENV)
    (project / "bot.py").write_text(USER_BOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(HOSTILE_SHELL, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = (result.stdout[-6000:] + result.stderr[-2000:]).strip()
    assert result.returncode == 0, summary
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= len(SUBSET), summary
    assert "skipped" not in result.stdout.splitlines()[-1], summary
