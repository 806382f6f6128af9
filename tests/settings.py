"""Settings built from what a test names and nothing else: never the process environment
(a user's shell may export MAX_SESSIONS or LOG_FORMAT), and a `.env`-style file only when the
test names one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.config import Settings


class _Explicit(Settings):
    """Settings from the keyword arguments only."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def explicit_settings(**values: Any) -> Settings:
    """Settings from `values`, every other field at its default."""
    return _Explicit(**values)


def settings_from_file(path: Path) -> Settings:
    """Settings from one `.env`-style file, read the way the service reads `.env`."""

    class FromFile(Settings):
        model_config = SettingsConfigDict(env_file=path)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (dotenv_settings,)

    return FromFile()
