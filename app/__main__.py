"""`python -m app`: load settings and `.env`, configure logging, load the bot, run uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from loguru import logger

from app.bot_loader import BotLoadError
from app.config import Settings, SettingsError, load_settings
from app.logs import configure_logging
from app.main import create_app


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
    server = uvicorn.Server(_uvicorn_config(app, settings))
    server.run()
    return 0


def _uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # logging is ours: app.logs routes uvicorn through loguru
        access_log=settings.access_log,
        loop="auto",  # uvloop where installed
        http="auto",
        ws="auto",
        lifespan="on",
        server_header=False,
    )


if __name__ == "__main__":
    sys.exit(main())
