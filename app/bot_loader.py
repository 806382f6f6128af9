"""Loading the user's bot module and calling `bot(args)` and `readyz()` the same way for
async and plain functions."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from app.arguments import SessionArguments


class BotLoadError(Exception):
    """The bot module cannot be used; the message is the one line shown at start-up."""


@dataclass(frozen=True)
class Bot:
    """The loaded `bot(args)` and optional `readyz()` of the configured module."""

    module_name: str
    entry: Callable[[SessionArguments], Any]
    readiness: Callable[[], Any] | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.entry)

    async def run(self, args: SessionArguments) -> None:
        """Run one session's bot. A plain function runs in its own daemon thread so it can
        neither stall the event loop nor hold the process open at exit."""
        if self.is_async:
            await self.entry(args)
        else:
            await run_in_thread(self.entry, args)


class ReadinessCheck:
    """Asks the bot's `readyz()` (if it has one) with a deadline, and never more than once
    at a time: a probe that arrives while a call is in flight waits for that call, so a
    `readyz()` that hangs costs one thread or task, not one per probe."""

    def __init__(self, readiness: Callable[[], Any] | None, timeout_secs: float) -> None:
        self._readiness = readiness
        self._timeout = timeout_secs
        self._in_flight: asyncio.Task[tuple[bool, str]] | None = None

    async def __call__(self) -> tuple[bool, str]:
        """`(ready, why not)`: a `readyz()` that raises, answers anything but `True` (or
        `{"ready": True}`), or is late, says not ready."""
        if self._readiness is None:
            return True, ""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._ask(self._readiness))
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._in_flight)
        except TimeoutError:
            return False, (
                f"bot readyz() did not answer within {self._timeout:g}s (READYZ_TIMEOUT_SECS)"
            )

    @staticmethod
    async def _ask(readiness: Callable[[], Any]) -> tuple[bool, str]:
        try:
            if inspect.iscoroutinefunction(readiness):
                answer = await readiness()
            else:
                answer = await run_in_thread(readiness)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit too: a probe never stops the service
            return False, f"bot readyz() raised {type(exc).__name__}"
        if isinstance(answer, dict):
            answer = answer.get("ready", False)
        return (True, "") if answer is True else (False, "bot readyz() reported not ready")


def load_bot(module_name: str) -> Bot:
    """Import `module_name` and check it offers a usable `bot(args)`."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise BotLoadError(
                f"BOT_MODULE={module_name!r}: no module named {exc.name!r} "
                "(is the file there, and is the name a Python module path such as 'bot'?)"
            ) from None
        raise BotLoadError(f"BOT_MODULE={module_name!r}: importing it failed: {exc}") from None
    except Exception as exc:
        raise BotLoadError(
            f"BOT_MODULE={module_name!r}: importing it raised {type(exc).__name__}: {exc}"
        ) from None
    return Bot(module_name, _entry(module, module_name), _readiness(module, module_name))


def _entry(module: ModuleType, module_name: str) -> Callable[[SessionArguments], Any]:
    entry = getattr(module, "bot", None)
    if entry is None:
        raise BotLoadError(f"BOT_MODULE={module_name!r} defines no function named 'bot'")
    if not callable(entry):
        raise BotLoadError(f"BOT_MODULE={module_name!r}: 'bot' is not a function")
    if not _accepts_one_argument(entry):
        raise BotLoadError(
            f"BOT_MODULE={module_name!r}: bot() must take one argument, the session "
            "arguments: def bot(args) or async def bot(args)"
        )
    return entry  # type: ignore[no-any-return]


def _readiness(module: ModuleType, module_name: str) -> Callable[[], Any] | None:
    readiness = getattr(module, "readyz", None)
    if readiness is None:
        return None
    if not callable(readiness):
        raise BotLoadError(f"BOT_MODULE={module_name!r}: 'readyz' is not a function")
    try:
        inspect.signature(readiness).bind()
    except TypeError:
        raise BotLoadError(f"BOT_MODULE={module_name!r}: readyz() must take no arguments") from None
    except ValueError:  # builtins without a signature
        pass
    return readiness  # type: ignore[no-any-return]


def _accepts_one_argument(func: Callable[..., Any]) -> bool:
    try:
        inspect.signature(func).bind(object())
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: trust them
        return True
    return True


async def run_in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run `func(*args)` in a new daemon thread with the caller's context variables (so log
    lines keep their session id), and await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result = context.run(func, *args)
        except BaseException as exc:
            _call_soon(loop, settle, None, exc)
        else:
            _call_soon(loop, settle, result, None)

    threading.Thread(
        target=target, name=f"bot-{getattr(func, '__name__', 'call')}", daemon=True
    ).start()
    return await future


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # The loop may already be closed when an abandoned thread finally returns.
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)
