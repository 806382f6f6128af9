"""The suite's layers are its folders, and each folder's tests carry its marker:

- `tests/unit/` (`unit`): one part of `app` at a time;
- `tests/inprocess/` (`inprocess`): the app behind a `TestClient`, settings given explicitly;
- `tests/e2e/` (`e2e`): the real process, started by `tests/launcher.py`;
- `tests/container/` (`container`): the image and compose project on a Docker engine;
- `tests/pipecat/` (`pipecat`): real Pipecat pipelines in the real process, run apart with the
  `pipecat` dependency group (`tests/pipecat/run_versions.sh`).

`uv run pytest` runs every layer but `container`, which needs a Docker engine and runs only
when a `-m` expression names it (`uv run pytest -m container`). Tests marked `slow` (fuzzing,
soak, the suite in a copy of the project) run by default, as in CI; `uv run pytest -m "not
slow"` skips them for a quick local loop, and `-m unit` (or `inprocess`, `e2e`) runs one
layer.

No test reads the repository's `.env`, a botdock setting exported in the shell, or `bot.py`:
that is the user's, and `tests/bots/echo.py` stands in for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_daily import FakeDaily

LAYERS = ("unit", "inprocess", "e2e", "container", "pipecat", "browser")
_TESTS = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(_TESTS):
            continue  # named on the command line from outside the suite
        layer = item.path.relative_to(_TESTS).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.nodeid}: every test module belongs in one of the layer folders "
                f"tests/{{{','.join(LAYERS)}}}/"
            )
        item.add_marker(layer)
    if "container" not in str(config.getoption("markexpr")):
        container = [item for item in items if item.get_closest_marker("container")]
        if container:
            config.hook.pytest_deselected(items=container)
            items[:] = [item for item in items if not item.get_closest_marker("container")]


@pytest.fixture
def fake_daily() -> Iterator[FakeDaily]:
    """A fake Daily REST API on a loopback port, expecting the key `test-key`."""
    fake = FakeDaily("test-key").start()
    yield fake
    fake.stop()
