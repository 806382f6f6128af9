"""The phone settings: validated at start-up with the variable named (and no secret echoed),
each documented in .env.example and docs/configuration.md."""

import base64
import os
from pathlib import Path

import pytest

from app.config import Settings, SettingsError, load_settings
from tests.launcher import SETTINGS
from tests.project import ROOT
from tests.settings import explicit_settings, settings_from_file

PHONE = [
    "public_url",
    "trusted_proxies",
    "phone_start_timeout_secs",
    "twilio_account_sid",
    "twilio_auth_token",
    "twilio_api_url",
    "telnyx_public_key",
    "telnyx_api_key",
    "telnyx_api_url",
    "telnyx_timestamp_tolerance_secs",
    "plivo_auth_id",
    "plivo_auth_token",
    "plivo_api_url",
    "exotel_webhook_secret",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper() in SETTINGS:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_reach_the_real_hosts_and_no_provider_is_authenticated() -> None:
    s = load_settings()
    assert (s.public_url, s.trusted_proxies, s.phone_start_timeout_secs) == (None, [], 10)
    assert (s.twilio_api_url, s.telnyx_api_url, s.plivo_api_url) == (
        "https://api.twilio.com",
        "https://api.telnyx.com",
        "https://api.plivo.com",
    )
    assert s.twilio_auth_token is None and s.telnyx_public_key is None
    assert s.plivo_auth_token is None and s.exotel_webhook_secret is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "PUBLIC_URL",
            "bots.example.com",
            "PUBLIC_URL: Value error, must be an https:// (or http://) URL, e.g. "
            "https://bots.example.com (got 'bots.example.com')",
        ),
        (
            "PUBLIC_URL",
            "https://bots.example.com/?x=1",
            "PUBLIC_URL: Value error, must hold no query, fragment or credentials "
            "(got 'https://bots.example.com/?x=1')",
        ),
        (
            "TELNYX_PUBLIC_KEY",
            "not-a-key",
            "TELNYX_PUBLIC_KEY: Value error, must be the base64 Ed25519 public key of Telnyx's "
            "portal (32 bytes) (got 'not-a-key')",
        ),
        (
            "TWILIO_API_URL",
            "api.twilio.com",
            "TWILIO_API_URL: Value error, must be an http:// or https:// URL "
            "(got 'api.twilio.com')",
        ),
        (
            "TWILIO_AUTH_TOKEN",
            "token-with-newline\n",
            "TWILIO_AUTH_TOKEN: Value error, must not start or end with whitespace "
            "(a trailing newline?)",
        ),
    ],
)
def test_invalid_phone_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == f"invalid configuration: {message}"


def test_public_url_loses_its_trailing_slash_and_empty_secrets_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://bots.example.com/")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "")
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", base64.b64encode(b"k" * 32).decode())
    s = load_settings()
    assert s.public_url == "https://bots.example.com"
    assert s.twilio_auth_token is None
    assert s.telnyx_public_key is not None


def test_env_example_and_configuration_doc_list_every_phone_setting() -> None:
    assert {n for n in Settings.model_fields if n in PHONE} == set(PHONE)
    example = settings_from_file(ROOT / ".env.example")
    defaults = explicit_settings()
    assert [getattr(example, n) for n in PHONE] == [getattr(defaults, n) for n in PHONE]
    env_example = (ROOT / ".env.example").read_text()
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name in PHONE:
        assert f"\n{name.upper()}=" in env_example
        assert f"`{name.upper()}`" in doc
