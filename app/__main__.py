"""`python -m app`: load settings and `.env`, configure logging, load the bot, serve until a
signal drains the service."""

from __future__ import annotations

import gc
import importlib.util
import sys

from dotenv import load_dotenv
from loguru import logger

from app.config import SettingsError, load_settings
from app.listener import ListenError, open_listener
from app.logs import configure_logging


def main() -> int:
    # `.env` into the process environment (what is already set wins), so the bot's own keys
    # (DEEPGRAM_API_KEY, OPENAI_API_KEY, ...) reach `os.getenv` as Pipecat Cloud's secrets
    # and `docker compose`'s env_file do.
    load_dotenv(".env", override=False)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"botdock: {exc}\n")
        return 2
    # Pipecat Cloud's SDK replaces loguru's sinks with its own when first imported
    # (`logger.remove()` in `pipecatcloud/__init__.py`): a bot importing it after logging is
    # configured would leave botdock's lines without their format, their JSON and their
    # session ids. So the service is imported first (`app.arguments` imports Pipecat and,
    # when installed, `pipecatcloud.agent`), with `pipecatcloud` even without Pipecat, then
    # logging is configured, then the bot is loaded: its imports find them loaded, and sinks
    # the bot adds itself stay. Pipecat's import banner is left out (the start line names
    # its version): a start-up error stays one line.
    logger.disable("pipecat")
    from app.bot_loader import BotLoadError
    from app.main import create_app
    from app.server import build_server

    if importlib.util.find_spec("pipecatcloud") is not None:
        importlib.import_module("pipecatcloud")
    logger.enable("pipecat")
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except BotLoadError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    pipecat = sys.modules.get("pipecat")
    logger.info(
        "botdock starting: mode={} bot={} max_sessions={} on {}:{}{}",
        settings.session_mode.value,
        settings.bot_module,
        settings.max_sessions,
        settings.host,
        settings.port,
        f" (Pipecat {getattr(pipecat, '__version__', '?')})" if pipecat is not None else "",
    )
    try:
        listener = open_listener(settings.host, settings.port)
    except ListenError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    server = build_server(app, settings)
    # What start-up built (the service, the bot module and its imports: Pipecat's are about
    # 100,000 objects) lives as long as the process. Frozen, the garbage collector's full
    # collections no longer walk it on the event loop: 31-34 ms each with Pipecat imported,
    # measured, enough to make the loop late for audio (docs/observability.md).
    gc.freeze()
    server.run(sockets=[listener])
    if not server.started:
        logger.error("cannot start: the server failed to start (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
