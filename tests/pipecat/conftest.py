"""tests/pipecat runs with Pipecat installed, and only then: the default run leaves this
folder out (`--ignore` in pyproject.toml), and running it without Pipecat is an error, not
a skip, so a CI job that lost the group cannot pass silently."""

import importlib.util

import pytest

if importlib.util.find_spec("pipecat") is None or importlib.util.find_spec("pipecatcloud") is None:
    raise pytest.UsageError(
        "tests/pipecat needs Pipecat and Pipecat Cloud's SDK: run "
        "`uv run --group pipecat pytest tests/pipecat` (or tests/pipecat/run_versions.sh)"
    )

from tests.e2e.conftest import server_for

__all__ = ["server_for"]
