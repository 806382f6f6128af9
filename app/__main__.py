"""`python -m app`: load settings and `.env`, configure logging, load the bot, serve until a
signal drains the service."""

from __future__ import annotations

import sys

from loguru import logger

from app.bot_loader import BotLoadError
from app.config import SettingsError, load_settings
from app.listener import ListenError, open_listener
from app.logs import configure_logging
from app.main import create_app
from app.server import build_server


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"botdock: {exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except BotLoadError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    logger.info(
        "botdock starting: mode={} bot={} max_sessions={} on {}:{}",
        settings.session_mode.value,
        settings.bot_module,
        settings.max_sessions,
        settings.host,
        settings.port,
    )
    try:
        listener = open_listener(settings.host, settings.port)
    except ListenError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    server = build_server(app, settings)
    server.run(sockets=[listener])
    if not server.started:
        logger.error("cannot start: the server failed to start (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
