import asyncio
import threading

import pytest

from app.arguments import PipecatSessionArguments
from app.bot_loader import BotLoadError, ReadinessCheck, load_bot, run_in_thread


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

    check = ReadinessCheck(load_bot("tests.bots.not_ready").readiness, 5)
    assert await check() == (False, "bot readyz() reported not ready")
    not_ready.READY = {"ready": True}
    try:
        assert await check() == (True, "")
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
    loop_ran = threading.Event()

    def blocking() -> str:
        seen.append(threading.current_thread().name)
        # Only a task on the event loop sets it: it does while this thread waits, or never.
        return "done" if loop_ran.wait(10) else "the loop was blocked"

    async def on_the_loop() -> None:
        loop_ran.set()

    task = asyncio.create_task(on_the_loop())
    assert await run_in_thread(blocking) == "done"
    await task
    assert seen[0] != threading.main_thread().name

    def failing() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await run_in_thread(failing)
