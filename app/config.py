"""Typed settings, read once from the environment and `.env` and validated at start-up."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SessionMode(StrEnum):
    AUTO = "auto"
    PIPECAT = "pipecat"
    DAILY = "daily"
    WEBSOCKET = "websocket"


class SessionIsolation(StrEnum):
    INLINE = "inline"  # every session's bot() on the server's own event loop
    PROCESS = "process"  # each session in a worker process of a prewarmed pool


class SettingsError(Exception):
    """A setting has an invalid value; the message names the variable."""


class Settings(BaseSettings):
    """Every setting of the service. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    session_mode: SessionMode = SessionMode.AUTO
    session_isolation: SessionIsolation = SessionIsolation.INLINE
    prewarm_workers: int = Field(default=2, ge=0, le=1000)
    worker_max_sessions: int = Field(default=100, ge=1)
    worker_max_rss_mb: int | None = Field(default=None, ge=16)  # None: no limit
    bot_module: str = Field(default="bot", min_length=1)
    host: str = "0.0.0.0"  # a container must listen on every interface
    port: int = Field(default=8080, ge=0, le=65535)
    max_sessions: int = Field(default=10, ge=1)
    session_timeout_secs: float = Field(default=7200, gt=0)
    drain_timeout_secs: float = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=65536, ge=1)
    pending_session_timeout_secs: float = Field(default=30, gt=0)
    session_token_ttl_secs: float = Field(default=30, gt=0)
    readyz_timeout_secs: float = Field(default=1, gt=0)
    max_loop_lag_secs: float = Field(default=0.5, gt=0)
    loop_lag_warn_secs: float = Field(default=0.25, gt=0)
    client_timeout_secs: float = Field(default=10, gt=0)
    max_header_bytes: int = Field(default=32768, ge=1024)
    ws_max_message_bytes: int = Field(default=1048576, ge=1024)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_key: SecretStr | None = None
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    daily_api_key: SecretStr | None = None
    daily_api_url: str = "https://api.daily.co/v1"
    daily_connect_timeout_secs: float = Field(default=5, gt=0)
    daily_read_timeout_secs: float = Field(default=10, gt=0)
    daily_start_timeout_secs: float = Field(default=20, gt=0)
    daily_room_expiry_secs: int | None = Field(default=None, gt=0)  # None: the session's limit

    @field_validator("log_level", "log_format", "session_mode", "session_isolation", mode="before")
    @classmethod
    def _normalise_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value.upper() if value.lower() in _LEVELS else value.lower()
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("api_key", "daily_api_key", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and value != value.strip():
            # A key copied with a newline would pass start-up and then never match.
            raise ValueError("must not start or end with whitespace (a trailing newline?)")
        return value

    @field_validator("daily_room_expiry_secs", "worker_max_rss_mb", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("daily_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value


_LEVELS = {"trace", "debug", "info", "success", "warning", "error", "critical"}


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and `.env`), turning validation errors into one
    readable message per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            given = error.get("input")
            shown = "" if _is_secret(name) else f" (got {given!r})"
            problems.append(f"{name}: {error['msg']}{shown}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


def _is_secret(name: str) -> bool:
    return name.endswith("API_KEY")
