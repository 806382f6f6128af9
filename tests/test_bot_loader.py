import asyncio
import threading

import pytest

from app.arguments import PipecatSessionArguments
from app.bot_loader import BotLoadError, load_bot, run_in_thread


def test_missing_module_is_one_clear_line() -> None:
    with pytest.raises(BotLoadError) as err:
        load_bot("tests.bots.does_not_exist")
    assert str(err.value) == (
        "BOT_MODULE='tests.bots.does_not_exist': no module named 'tests.bots.does_not_exist' "
        "(is the file there, and is the name a Python module path such as 'bot'?)"
    )


def test_module_without_bot() -> None:
    with pytest.raises(BotLoadError) as err:
        load_bot("tests.bots.no_bot")
    assert str(err.value) == "BOT_MODULE='tests.bots.no_bot' defines no function named 'bot'"


def test_bot_without_argument() -> None:
    with pytest.raises(BotLoadError, match=r"bot\(\) must take one argument"):
        load_bot("tests.bots.no_args")


def test_module_raising_on_import() -> None:
    with pytest.raises(BotLoadError) as err:
        load_bot("tests.bots.import_error")
    assert str(err.value) == (
        "BOT_MODULE='tests.bots.import_error': importing it raised RuntimeError: "
        "missing configuration for this bot"
    )


def test_async_and_sync_bots_are_recognised() -> None:
    assert load_bot("tests.bots.recorder").is_async
    assert not load_bot("tests.bots.sync_sleeper").is_async


async def test_readyz_dict_answer_is_read() -> None:
    from tests.bots import not_ready

    bot = load_bot("tests.bots.not_ready")
    assert await bot.ready() == (False, "bot readyz() reported not ready")
    not_ready.READY = {"ready": True}
    try:
        assert await bot.ready() == (True, "")
    finally:
        not_ready.READY = {"ready": False}


async def test_sync_bot_runs_in_its_own_thread() -> None:
    from tests.bots import sync_sleeper

    bot = load_bot("tests.bots.sync_sleeper")
    sync_sleeper.ENTERED.clear()
    await bot.run(PipecatSessionArguments(session_id="s1", body={"sleep": 0}))
    assert sync_sleeper.ENTERED == ["s1"]


async def test_run_in_thread_keeps_the_loop_free_and_propagates_errors() -> None:
    seen: list[str] = []

    def blocking() -> str:
        seen.append(threading.current_thread().name)
        import time

        time.sleep(0.2)
        return "done"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    tick_task = asyncio.create_task(ticker())
    assert await run_in_thread(blocking) == "done"
    tick_task.cancel()
    assert ticks >= 5  # the loop kept running while the thread slept
    assert seen[0] != threading.main_thread().name

    def failing() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await run_in_thread(failing)
