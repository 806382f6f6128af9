"""Typed settings, read once from the environment and `.env` and validated at start-up."""

from __future__ import annotations

import base64
import json
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
    # STUN/TURN servers for WebRTC sessions, each {"urls": ..., "username"?, "credential"?}.
    # None by default: host candidates only, no outside server is ever contacted.
    ice_servers: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    api_key: SecretStr | None = None
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    # The dev console at `/`: on for local runs, off in the published image (its Dockerfile).
    console_enabled: bool = True
    daily_api_key: SecretStr | None = None
    daily_api_url: str = "https://api.daily.co/v1"
    daily_connect_timeout_secs: float = Field(default=5, gt=0)
    daily_read_timeout_secs: float = Field(default=10, gt=0)
    daily_start_timeout_secs: float = Field(default=20, gt=0)
    daily_room_expiry_secs: int | None = Field(default=None, gt=0)  # None: the session's limit
    # Phone calls (docs/telephony.md): where providers reach this service, who may speak for
    # it, and each provider's credentials (signatures, hang-up).
    public_url: str | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    phone_start_timeout_secs: float = Field(default=10, gt=0)
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_url: str = "https://api.twilio.com"
    telnyx_public_key: str | None = None
    telnyx_api_key: SecretStr | None = None
    telnyx_api_url: str = "https://api.telnyx.com"
    telnyx_timestamp_tolerance_secs: int = Field(default=300, gt=0)
    plivo_auth_id: str | None = None
    plivo_auth_token: SecretStr | None = None
    plivo_api_url: str = "https://api.plivo.com"
    exotel_webhook_secret: SecretStr | None = None

    @field_validator("log_level", "log_format", "session_mode", "session_isolation", mode="before")
    @classmethod
    def _normalise_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value.upper() if value.lower() in _LEVELS else value.lower()
        return value

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        return parse_ice_servers(value) if isinstance(value, str) else value

    @field_validator(
        "api_key",
        "daily_api_key",
        "twilio_auth_token",
        "telnyx_api_key",
        "plivo_auth_token",
        "exotel_webhook_secret",
        "twilio_account_sid",
        "telnyx_public_key",
        "plivo_auth_id",
        mode="before",
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and value != value.strip():
            # A key copied with a newline would pass start-up and then never match.
            raise ValueError("must not start or end with whitespace (a trailing newline?)")
        return value

    @field_validator("daily_room_expiry_secs", "public_url", "worker_max_rss_mb", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("daily_api_url", "twilio_api_url", "telnyx_api_url", "plivo_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        """The base URL providers reach this service at: scheme and host (and a path prefix),
        no query; `wss://` stream URLs are made from it."""
        if value is None:
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an https:// (or http://) URL, e.g. https://bots.example.com")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must hold no query, fragment or credentials")
        return value.rstrip("/")

    @field_validator("telnyx_public_key")
    @classmethod
    def _ed25519_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ValueError("must be the base64 Ed25519 public key of Telnyx's portal (32 bytes)")
        return value


_ICE_KEYS = {"urls", "username", "credential"}
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def parse_ice_servers(text: str) -> list[dict[str, Any]]:
    """`ICE_SERVERS` as Pipecat's runner reads `PIPECAT_ICE_SERVERS`: a JSON array of servers,
    one JSON object, or comma-separated STUN/TURN URLs. Each server is `{"urls": url or
    [urls], "username"?, "credential"?}`."""
    text = text.strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at position {exc.pos}") from None
        if isinstance(entries, dict):
            entries = [entries]
    else:
        entries = [{"urls": url.strip()} for url in text.split(",") if url.strip()]
    if not isinstance(entries, list):
        raise ValueError("must be a JSON array of ICE servers, a JSON object or URLs")
    servers = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"urls": entry}
        if not isinstance(entry, dict):
            raise ValueError("each ICE server must be a URL or an object with 'urls'")
        unknown = sorted(set(entry) - _ICE_KEYS)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}: an ICE server has {sorted(_ICE_KEYS)}")
        urls = entry.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if not listed or not isinstance(listed, list):
            raise ValueError("each ICE server needs 'urls': a URL or a list of URLs")
        for url in listed:
            if not isinstance(url, str) or not url.startswith(_ICE_SCHEMES):
                raise ValueError("ICE server URLs start with stun:, stuns:, turn: or turns:")
        for key in ("username", "credential"):
            if key in entry and not isinstance(entry[key], str):
                raise ValueError(f"an ICE server's {key!r} must be a string")
        servers.append(dict(entry))
    return servers


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
    return name.endswith(("API_KEY", "AUTH_TOKEN", "_SECRET")) or name == "ICE_SERVERS"
